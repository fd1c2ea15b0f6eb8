#!/bin/sh
# Run by docker/Dockerfile in the image: installs the Debian packages of each LIST (first word of each line,
# '#' lines skipped — the same parsing as scripts/deps.sh) without recommends, then drops apt's lists and caches.
#
# Usage: install-packages.sh LIST...
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2046 # one word per package
apt-get install -y -qq --no-install-recommends $(awk 'NF && $1 !~ /^#/ { print $1 }' "$@") >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log /var/cache/debconf/*-old
