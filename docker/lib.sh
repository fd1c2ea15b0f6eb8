# shellcheck shell=bash disable=SC2034 # (variables for the scripts that source this file)
# Shared by docker/*.sh (sourced): how podman is run on every machine these scripts support.
#
# - runc with cgroupfs: crun fails on hosts with a hybrid cgroup v1 hierarchy, and cgroupfs needs no
#   systemd session; both work on cgroup v2 hosts too.
# - explicit, modest ulimits for every container: as root podman asks for nofile=1048576 and a large
#   nproc, which some hosts refuse ("error setting rlimit type 7: operation not permitted").
# PODMAN_GLOBAL_OPTS overrides the global flags (e.g. to use crun and systemd on a host where they work).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
PODMAN_GLOBAL_OPTS=${PODMAN_GLOBAL_OPTS:---runtime runc --cgroup-manager=cgroupfs}
KVM_LAUNCH_ULIMITS=(--ulimit nofile=20000:20000 --ulimit nproc=1000:1000)

# podman ARGS...: podman with the global flags above.
podman() {
	# shellcheck disable=SC2086 # the global options are words
	command podman $PODMAN_GLOBAL_OPTS "$@"
}

# need_podman: fail with what to do when podman is missing or cannot run containers here.
need_podman() {
	command -v podman >/dev/null || {
		echo "${0##*/}: podman is missing: run 'scripts/deps.sh docker/packages-host.txt' (as root)" >&2
		exit 1
	}
	[[ $(id -u) -eq 0 ]] || {
		echo "${0##*/}: run as root (privileged containers, podman networks)" >&2
		exit 1
	}
}
