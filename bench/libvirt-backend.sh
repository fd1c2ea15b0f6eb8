#!/usr/bin/env bash
# bench/libvirt-backend.sh: what VM_BACKEND=libvirt costs against the direct path, both measured in the same
# run, interleaved: kvm-launch start → a QEMU process running the disk exists, and start → first ping reply
# from the test guest (TCG) on the container's address. Prints one line per run and the medians (min–max).
# As root, after `swift build -c release --product kvm-launch` (or KVM_LAUNCH=path) and `make guest`.
# env: RUNS (default 3), KVM_LAUNCH (default .build/release/kvm-launch)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
bin=${KVM_LAUNCH:-$PWD/.build/release/kvm-launch}
guest=$PWD/image/out/test-guest.qcow2
[[ -x $bin && -s $guest ]] || { echo "need $bin and $guest" >&2; exit 1; }
id=kl-lvb-$$
ct=$id-ct net=$id-net work=$(mktemp -d /tmp/$id.XXXXXX)
cleanup() {
	set +e
	[[ -n ${pid:-} ]] && kill -KILL "$pid" 2>/dev/null
	ip netns del "$ct" 2>/dev/null; ip netns del "$net" 2>/dev/null
	rm -rf "$work" "/etc/netns/$ct"
}
trap cleanup EXIT
now() { date +%s.%N; }
qemu_running() { # a qemu-system process whose command line names this run's disk
	local p
	for p in /proc/[0-9]*; do
		{ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q "qemu-system.*$work/disk.qcow2" && return 0
	done
	return 1
}
one_run() { # one_run BACKEND: prints "qemu_s ping_s"
	ip netns add "$ct"; ip netns add "$net"
	mkdir -p "/etc/netns/$ct"; echo "nameserver 192.0.2.53" >"/etc/netns/$ct/resolv.conf"
	ip -n "$net" link add p0 type veth peer name eth0 netns "$ct"
	ip -n "$net" link set p0 up; ip -n "$net" addr add 10.90.0.1/24 dev p0
	ip -n "$ct" link set eth0 up; ip -n "$ct" addr add 10.90.0.2/24 dev eth0
	ip -n "$ct" route add default via 10.90.0.1
	rm -f "$work/disk.qcow2"; qemu-img create -q -f qcow2 -b "$guest" -F qcow2 "$work/disk.qcow2"
	local start qemu= ping=
	start=$(now)
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin AUTO_ATTACH=yes VM_ACCEL=tcg VM_MEMORY=256M VM_IMAGE="$work/disk.qcow2" \
		KVM_LAUNCH_RUN_DIR="$work/run" VM_BACKEND="$1" VM_IMAGE_BACKING=allow \
		ip netns exec "$ct" "$bin" </dev/null >"$work/$1.out" 2>&1 &
	pid=$!
	# The container's own address answers pings until kvm-launch moves it: count a reply only once QEMU runs.
	for _ in $(seq 1 6000); do
		if [[ -z $qemu ]] && qemu_running; then qemu=$(now); fi
		if [[ -n $qemu ]] && ip netns exec "$net" ping -c 1 -W 0.1 -q 10.90.0.2 >/dev/null 2>&1; then ping=$(now); break; fi
		[[ -n $qemu ]] || sleep 0.01
	done
	kill -TERM "$pid"; wait "$pid" || true; pid=
	ip netns del "$ct"; ip netns del "$net"
	awk -v s="$start" -v q="${qemu:-0}" -v p="${ping:-0}" 'BEGIN { printf "%.3f %.3f\n", q - s, p - s }'
}
declare -A q p
for i in $(seq 1 "$runs"); do
	for backend in qemu libvirt; do
		read -r qs ps < <(one_run "$backend")
		echo "run $i $backend: start → QEMU running $qs s, start → first ping $ps s"
		q[$backend]+="$qs "; p[$backend]+="$ps "
	done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { printf "%.2f s (%.2f–%.2f)", a[int((NR + 1) / 2)], a[1], a[NR] }'; }
for backend in qemu libvirt; do
	echo "$backend: start → QEMU running $(median <<<"${q[$backend]}"), start → first ping $(median <<<"${p[$backend]}")"
done
