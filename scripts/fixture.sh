#!/usr/bin/env bash
# The simulated container the scripts share (make demo, bench/bench.py, docker/test-container.sh);
# the Swift tests build the same shape with Tests/TestSupport's ContainerFixture.
#
# Shape: a container namespace CT whose interfaces eth0, eth1, … are veths to a "network" namespace
# NET holding their peers p0, p1, …; interface i has 10.(BASE+i).0.2/24, its peer 10.(BASE+i).0.1/24;
# the container's default route goes through p0's address; lo is up in both. Optionally a resolv.conf
# that `ip netns exec CT` shows as the container's own (/etc/netns/CT/resolv.conf).
#
# Sourced, it defines the functions below; run, it is a command for programs in other languages:
#   scripts/fixture.sh container CT NET COUNT BASE [SEARCH]   make the container (SEARCH: write a resolv.conf)
#   scripts/fixture.sh veth CT NET LINK PEER ADDRESS PEER_ADDRESS   one veth (CT "" = this namespace)
#   scripts/fixture.sh destroy CT NET                           kill what runs in them, delete both
# Every command is checked: a step the kernel refuses fails the fixture, it is never left out.

# fixture_container_address BASE I / fixture_peer_address BASE I: interface I's address and its peer's.
fixture_container_address() { echo "10.$(($1 + $2)).0.2"; }
fixture_peer_address() { echo "10.$(($1 + $2)).0.1"; }

# fixture_veth CT NET LINK PEER ADDRESS/PREFIX PEER_ADDRESS/PREFIX: LINK in CT ("" = the namespace the
# caller is in, e.g. the host for --net=host) with ADDRESS, its peer PEER in NET with PEER_ADDRESS; both up.
fixture_veth() {
	local ct=$1 net=$2 link=$3 peer=$4 address=$5 peer_address=$6
	local in_ct=(ip)
	[[ -n $ct ]] && in_ct=(ip -n "$ct")
	"${in_ct[@]}" link add "$link" type veth peer name "$peer" netns "$net" || return
	"${in_ct[@]}" addr add "$address" dev "$link" &&
		"${in_ct[@]}" link set "$link" up &&
		ip -n "$net" addr add "$peer_address" dev "$peer" &&
		ip -n "$net" link set "$peer" up
}

# fixture_container CT NET COUNT BASE [SEARCH]: the namespaces (which must not exist yet) and COUNT
# interfaces, with a resolv.conf naming p0's address and SEARCH when SEARCH is given.
fixture_container() {
	local ct=$1 net=$2 count=$3 base=$4 search=${5:-} i
	ip netns add "$net" && ip netns add "$ct" || return
	ip -n "$net" link set lo up && ip -n "$ct" link set lo up || return
	for ((i = 0; i < count; i++)); do
		fixture_veth "$ct" "$net" "eth$i" "p$i" "$(fixture_container_address "$base" "$i")/24" \
			"$(fixture_peer_address "$base" "$i")/24" || return
	done
	ip -n "$ct" route add default via "$(fixture_peer_address "$base" 0)" || return
	if [[ -n $search ]]; then
		mkdir -p "/etc/netns/$ct" &&
			printf 'nameserver %s\nsearch %s\n' "$(fixture_peer_address "$base" 0)" "$search" >"/etc/netns/$ct/resolv.conf"
	fi
}

# fixture_destroy CT NET: kills whatever still runs in either namespace, deletes them (the veths go with
# them) and the container's resolv.conf. Never fails.
fixture_destroy() {
	local namespace pid
	for namespace in "$@"; do
		[[ -n $namespace ]] || continue
		for pid in $(ip netns pids "$namespace" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		ip netns del "$namespace" 2>/dev/null
		rm -rf "/etc/netns/$namespace"
	done
	return 0
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -euo pipefail
	command=${1:-}
	shift || true
	case $command in
	container) fixture_container "$@" ;;
	veth) fixture_veth "$@" ;;
	destroy) fixture_destroy "$@" ;;
	*)
		echo "usage: $0 container CT NET COUNT BASE [SEARCH] | veth CT NET LINK PEER ADDRESS PEER_ADDRESS | destroy CT NET" >&2
		exit 2
		;;
	esac
fi
