// libyaml (Debian libyaml-dev): the YAML 1.1 parser and emitter CloudInitSeed uses for user data.
#include <yaml.h>
