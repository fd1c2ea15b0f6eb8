#!/usr/bin/env bash
# make test-container: the image, run for real with podman, the way README.md's "Docker" and "Kubernetes"
# sections tell users to run it. Prints `ok`/`FAIL` per check and a final `N passed, N failed` line.
#
#   image      the image's entrypoint, volume, stop signal, health check, labels; every program in it finds its
#              libraries, QEMU loads its firmware and modules, the shells are there, the dpkg records name the packages
#   config     a wrong AUTO_ATTACH: the container exits non-zero with the one-line reason in `podman logs`
#   k8s        docker/k8s/*.yaml validate offline (pinned Kubernetes schemas) and fail when broken
#   one-net    the old container's `docker run` (privileged, disk at /image/image.qcow2, AUTO_ATTACH=yes,
#              QEMU args as CMD): the guest gets the container's IP and MAC, the host pings the VM, the
#              health check passes, `podman stop` powers the guest off and the exit status is 0
#   two-nets   a second network connected before start: the VM has two NICs with both identities
#   restart    `podman restart`, then a SIGKILL of the container's PID 1 and `podman start`: each time the
#              VM comes back with the container's MAC and address, seen from the host (ping, ARP)
#   host-net   --net=host, AUTO_ATTACH=no, ATTACH_IFACES=<a veth the test made>: the VM takes that link
#              only, a namespace behind it pings the VM; the link is restored after the stop
#   compute    the compute-node pod: etcd (in a container), `config load`, the manifest's init container
#              command renders the files into cloud-init user data, the launcher boots the VM with general/
#              from etcd and that user data in its seed
#   shared-run two containers started together with one host folder as /run (`-v DIR:/run`): stopping
#              one powers off only its VM, the other keeps answering ping and `kvm-launch status`
#   libvirt    VM_BACKEND=libvirt from the libvirt variant (LIBVIRT_IMAGE): virsh in the container, status, stop;
#              the default image has no libvirt and refuses VM_BACKEND=libvirt with one line (image checks)
#
# Uses only the networks, links and namespaces it creates (subnets 10.213.X.0/24) and removes them, its
# containers and its files on any exit. Needs root and podman; fails (never skips) when podman cannot run.
# env: IMAGE (default localhost/kvm-launch:latest), LIBVIRT_IMAGE (default localhost/kvm-launch:libvirt),
#      READY_TIMEOUT (s, default 180)
set -uo pipefail
# shellcheck source=docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/fixture.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/fixture.sh"
IMAGE=${IMAGE:-localhost/kvm-launch:latest}
LIBVIRT_IMAGE=${LIBVIRT_IMAGE:-localhost/kvm-launch:libvirt}
READY_TIMEOUT=${READY_TIMEOUT:-180}
STOP_TIMEOUT=30   # VM_SHUTDOWN_TIMEOUT (20 s) + QEMU quit (5 s) + margin: README's --stop-timeout
guest=$repo/image/out/test-guest.qcow2

passed=0 failed=0
ok() { echo "ok   - $*"; passed=$((passed + 1)); }
not_ok() { echo "FAIL - $*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION COMMAND...: one result from the command's status (returned too)
	local what=$1
	shift
	if "$@"; then
		ok "$what"
	else
		not_ok "$what"
		return 1
	fi
}
not() { ! "$@"; }
quietly() { "$@" >/dev/null 2>>"$work/podman.err"; } # (a redirection after `check` would hide its line)
logged() { # logged FILE COMMAND...: output to FILE, shown when the command fails
	local file=$1
	shift
	"$@" >"$file" 2>&1 || { sed 's/^/    /' "$file"; return 1; }
}
finish() {
	echo "$passed passed, $failed failed"
	((failed == 0))
}
abort() { # a precondition failed: no point in going on
	echo "FAIL - $*"
	failed=$((failed + 1))
	finish
	exit 1
}

# --- preconditions: fail, never skip -------------------------------------------------------------------
need_podman
[[ -s $guest ]] || abort "no test guest at $guest: run 'make guest' (image/build.sh)"
podman image exists "$IMAGE" || abort "no image $IMAGE: run 'make image' first"
podman image exists "$LIBVIRT_IMAGE" || abort "no image $LIBVIRT_IMAGE: run 'make image' first (it builds both variants)"
work=$(mktemp -d /tmp/kvm-launch-container-test.XXXXXX)
id=$$
containers=() networks=() links=() namespaces=()
cleanup() {
	set +e
	for c in "${containers[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1; done
	for n in "${networks[@]}"; do podman network rm -f "$n" >/dev/null 2>&1; done
	for l in "${links[@]}"; do ip link del "$l" 2>/dev/null; done
	fixture_destroy "${namespaces[@]}"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "test-container: interrupted"; exit 130' INT TERM

if ! podman run --rm "${KVM_LAUNCH_ULIMITS[@]}" "$IMAGE" --version >"$work/version" 2>"$work/podman.err"; then
	cat "$work/podman.err"
	abort "podman cannot run a container here (message above): check 'podman $PODMAN_GLOBAL_OPTS info'"
fi
version=$(cat "$work/version")

# Networks of the test's own: 10.213.X.0/24, X picked at random, retried when a subnet is taken.
make_network() { # make_network NAME: creates it on a free 10.213.X.0/24, prints X
	local name=$1 x
	for _ in 1 2 3 4 5 6 7 8; do
		x=$((20 + RANDOM % 220))
		if podman network create --subnet "10.213.$x.0/24" --gateway "10.213.$x.1" "$name" >/dev/null 2>>"$work/podman.err"; then
			echo "$x"
			return 0
		fi
	done
	return 1
}
net_a=kl-dk-$id-a net_b=kl-dk-$id-b
networks+=("$net_a" "$net_b") # (removed on exit even when only one was made)
x_a=$(make_network "$net_a") || abort "cannot create podman network $net_a: $(tail -n 1 "$work/podman.err")"
x_b=$(make_network "$net_b") || abort "cannot create podman network $net_b: $(tail -n 1 "$work/podman.err")"

# disk NAME: sets disk_args to the volumes of a fresh qcow2 overlay over the test guest (the guest image
# is never written): the overlay at /image/image.qcow2, the guest read-only next to it at
# /image/test-guest.qcow2 (the overlay's backing file name is relative).
ln -s "$guest" "$work/test-guest.qcow2"
disk() {
	qemu-img create -q -f qcow2 -b test-guest.qcow2 -F qcow2 "$work/$1.qcow2"
	disk_args=(-v "$work/$1.qcow2:/image/image.qcow2" -v "$guest:/image/test-guest.qcow2:ro")
}

logs() { podman logs "$1" 2>&1 | tr -d '\r'; }
show_logs() { echo "--- podman logs $1 (last lines)"; logs "$1" | grep -v '^$' | tail -n 25 | sed 's/^/    /'; }
state() { podman inspect --format "{{.State.$2}}" "$1" 2>/dev/null; }

wait_ready() { # wait_ready CONTAINER [N]: until the logs hold N (default 1) KVMLAUNCH-READY lines; prints seconds
	local start=$EPOCHREALTIME deadline=$((SECONDS + READY_TIMEOUT)) want=${2:-1}
	until (($(logs "$1" | grep -c '^KVMLAUNCH-READY') >= want)); do
		if [[ $(state "$1" Status) != running ]]; then return 1; fi
		((SECONDS < deadline)) || return 1
		sleep 0.5
	done
	awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

nic_line() { # nic_line CONTAINER MAC: the guest's KVMLAUNCH-NIC line for that MAC (the latest boot's)
	logs "$1" | grep '^KVMLAUNCH-NIC ' | grep -- " mac=$2 " | tail -n 1
}

# container_net CONTAINER NETWORK FIELD: IPAddress or MacAddress of the container on that network
container_net() {
	podman inspect --format "{{(index .NetworkSettings.Networks \"$2\").$3}}" "$1"
}

stop_gracefully() { # stop_gracefully CONTAINER: podman stop; checks POWEROFF and exit status 0
	local c=$1 start=$EPOCHREALTIME took
	podman stop "$c" >/dev/null 2>>"$work/podman.err"
	took=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	check "$c: podman stop: the guest powered off (KVMLAUNCH-POWEROFF) in $took s" \
		grep -q '^KVMLAUNCH-POWEROFF' <(logs "$c")
	local code
	code=$(state "$c" ExitCode)
	check "$c: exit status after podman stop is 0 (is $code; 137 would mean SIGKILL after --stop-timeout)" \
		test "$code" = 0
	check "$c: kvm-launch restored the interfaces and exited 0" \
		grep -q "the guest powered off; exiting 0" <(logs "$c")
	[[ $code == 0 ]] || show_logs "$c"
}

run_common=(--privileged "${KVM_LAUNCH_ULIMITS[@]}" --stop-timeout "$STOP_TIMEOUT" -e VM_MEMORY=256M)

# --- image -----------------------------------------------------------------------------------------------
echo "# image $IMAGE (kvm-launch $version)"
podman image inspect "$IMAGE" >"$work/image.json"
# image_config EXPRESSION: a Python expression over the image's inspect JSON (i) and its config (c), as JSON
image_config() {
	python3 -c 'import json, sys; i = json.load(open(sys.argv[1]))[0]; c = i.get("Config") or {}
print(json.dumps(eval(sys.argv[2], {"i": i, "c": c})))' "$work/image.json" "$1"
}
check "image: ENTRYPOINT [\"kvm-launch\"]" test "$(image_config 'c.get("Entrypoint")')" = '["kvm-launch"]'
check "image: VOLUME /image" test "$(image_config '"/image" in (c.get("Volumes") or {})')" = true
check "image: STOPSIGNAL SIGTERM" test "$(image_config 'c.get("StopSignal")')" = '"SIGTERM"'
check "image: HEALTHCHECK runs kvm-launch status" \
	test "$(image_config '(i.get("Healthcheck") or {}).get("Test")')" = '["CMD", "kvm-launch", "status"]'
check "image: label org.opencontainers.image.version is $version" \
	test "$(image_config '(c.get("Labels") or {}).get("org.opencontainers.image.version")')" = "\"$version\""
# The images hold no Debian base: what runs is checked in them (docker/check-image.sh), QEMU is started far enough
# to load its BIOS and option ROMs, and the dpkg records (what image scanners read) name the packages.
check "image: every program and module in the image finds its shared libraries (docker/check-image.sh)" \
	logged "$work/check-image.log" podman run --rm "${KVM_LAUNCH_ULIMITS[@]}" --entrypoint /usr/share/kvm-launch/check-image.sh "$IMAGE"
# (-S: the machine is made, ROMs and BIOS loaded, and QEMU quits before the guest runs)
check "image: QEMU makes a q35 machine with SeaBIOS, a virtio-net ROM and qxl (DISABLE_VGA=no) in the image" \
	logged "$work/qemu-machine.log" bash -c 'echo quit | podman run --rm -i "${@:2}" --entrypoint qemu-system-x86_64 "$1" \
	-nodefaults -no-user-config -machine q35,accel=tcg -display none -S -monitor stdio -vga qxl \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0' _ "$IMAGE" "${KVM_LAUNCH_ULIMITS[@]}"
check "image: QEMU's modules load (-device help lists qxl-vga and usb-redir)" \
	test "$(podman run --rm "${KVM_LAUNCH_ULIMITS[@]}" --entrypoint qemu-system-x86_64 "$IMAGE" -device help 2>&1 |
		grep -c '"qxl-vga"\|"usb-redir"')" = 2
check "image: sh, bash and the busybox tools are there, and the CA bundle the config agent trusts by default" \
	quietly podman run --rm "${KVM_LAUNCH_ULIMITS[@]}" --entrypoint /bin/sh "$IMAGE" -c \
	'bash -c "cat /etc/os-release" && ps && ip link && grep -c "BEGIN CERTIFICATE" /etc/ssl/certs/ca-certificates.crt'
# CMD bash (the old container's debug mode): kvm-launch shows the plan and execs /bin/bash instead of the VM.
qemu-img create -q -f qcow2 "$work/debug.qcow2" 64M
check "image: CMD bash starts bash in the container instead of the VM" \
	grep -q '^bash 5' <(echo 'echo "bash ${BASH_VERSION%%.*}"' | podman run --rm -i "${KVM_LAUNCH_ULIMITS[@]}" -e AUTO_ATTACH=yes \
		-v "$work/debug.qcow2:/image/image.qcow2" "$IMAGE" bash 2>/dev/null)
check "image: /var/lib/dpkg/status.d records the Debian packages of its files (qemu-system-x86, seabios, libc6, ca-certificates among them)" \
	quietly podman run --rm "${KVM_LAUNCH_ULIMITS[@]}" --entrypoint /bin/sh "$IMAGE" -c \
	'cd /var/lib/dpkg/status.d && grep -q "^Package: qemu-system-x86$" qemu-system-x86 && test -s seabios -a -s libc6 -a -s ca-certificates'
mapfile -t libvirt_packages < <(awk 'NF && $1 !~ /^#/ { print $1 }' "$here/packages-libvirt.txt")
check "image: nothing of docker/packages-libvirt.txt is in the default image (no record, no libvirtd, virsh or libvirt.so)" \
	not quietly podman run --rm "${KVM_LAUNCH_ULIMITS[@]}" --entrypoint sh "$IMAGE" -c \
	'for p in "$@"; do test -e "/var/lib/dpkg/status.d/$p" && exit 0; done; find / -xdev -name "libvirt*" | grep -q . && exit 0
	command -v libvirtd virtlogd virsh' _ "${libvirt_packages[@]}"
check "image: the default image's kvm-launch does not link libvirt (ld.so --list)" \
	not grep -q libvirt <(podman run --rm "${KVM_LAUNCH_ULIMITS[@]}" --entrypoint /lib64/ld-linux-x86-64.so.2 "$IMAGE" --list /usr/local/bin/kvm-launch 2>&1)
podman run --rm "${KVM_LAUNCH_ULIMITS[@]}" -e AUTO_ATTACH=yes -e VM_BACKEND=libvirt "$IMAGE" --dry-run >"$work/novirt.out" 2>&1
code=$?
grep -v '^time=' "$work/novirt.out" >"$work/novirt.lines" # (podman's own messages start with time=)
check "image: VM_BACKEND=libvirt in the default image exits non-zero (exit status $code)" test "$code" -ne 0
check "image: ... with one line naming the libvirt variant" \
	test "$(grep -c '^Error: VM_BACKEND=libvirt needs the libvirt image variant' "$work/novirt.lines")/$(wc -l <"$work/novirt.lines")" = 1/1 ||
	sed 's/^/    /' "$work/novirt.lines"
check "image: $LIBVIRT_IMAGE: every program and module finds its shared libraries (docker/check-image.sh)" \
	logged "$work/check-image-libvirt.log" podman run --rm "${KVM_LAUNCH_ULIMITS[@]}" --entrypoint /usr/share/kvm-launch/check-image.sh "$LIBVIRT_IMAGE"
check "image: $LIBVIRT_IMAGE records every package of docker/packages-libvirt.txt, and libvirtd, virtlogd and virsh run" \
	quietly podman run --rm "${KVM_LAUNCH_ULIMITS[@]}" --entrypoint sh "$LIBVIRT_IMAGE" -c \
	'for p in "$@"; do test -s "/var/lib/dpkg/status.d/$p" || exit 1; done; libvirtd --version && virtlogd --version && virsh --version' _ "${libvirt_packages[@]}"
check "image: $LIBVIRT_IMAGE's kvm-launch is the build with the libvirt backend (links libvirt, kvm-launch-libvirt is the same file)" \
	quietly podman run --rm "${KVM_LAUNCH_ULIMITS[@]}" --entrypoint sh "$LIBVIRT_IMAGE" -c \
	'/lib64/ld-linux-x86-64.so.2 --list /usr/local/bin/kvm-launch | grep -q libvirt.so.0 && test /usr/local/bin/kvm-launch -ef /usr/local/bin/kvm-launch-libvirt'

# --- config ----------------------------------------------------------------------------------------------
echo "# a wrong AUTO_ATTACH"
c=kl-dk-$id-bad
containers+=("$c")
disk bad
podman run --name "$c" --network "$net_a" "${run_common[@]}" "${disk_args[@]}" -e AUTO_ATTACH=maybe "$IMAGE" \
	>/dev/null 2>>"$work/podman.err"
code=$(state "$c" ExitCode)
check "config: AUTO_ATTACH=maybe: the container exits non-zero (exit status $code)" test "${code:-0}" -ne 0
check "config: podman logs says what is wrong and what to do" \
	grep -q 'AUTO_ATTACH="maybe" is not a yes/no value; use yes or no' <(logs "$c")
check "config: QEMU was never started" not grep -q "starting /usr/bin/qemu" <(logs "$c")
[[ $code != 0 ]] || show_logs "$c"

# --- k8s -------------------------------------------------------------------------------------------------
echo "# Kubernetes manifests"
export KVM_LAUNCH_VENV=$here/out/k8s-venv
check "k8s: docker/k8s/*.yaml are valid for Kubernetes 1.30 and pass the launcher checks" \
	logged "$work/k8s.log" "$here/k8s/validate.sh"
sed -e 's/terminationGracePeriodSeconds: 30/terminationGracePeriodSeconds: 10/' \
	-e 's/enableServiceLinks: false/enableServiceLink: false/' "$here/k8s/vm.yaml" >"$work/broken.yaml"
status=0
"$here/k8s/validate.sh" "$work/broken.yaml" >"$work/k8s-broken.log" 2>&1 || status=$?
check "k8s: a manifest with an unknown field and a too short grace period is refused (exit status $status)" \
	test "$status" -ne 0
check "k8s: ... naming the unknown field" grep -q "'enableServiceLink' was unexpected" "$work/k8s-broken.log"
check "k8s: ... and the grace period that would SIGKILL the VM" \
	grep -q "terminationGracePeriodSeconds 10 < VM_SHUTDOWN_TIMEOUT 20" "$work/k8s-broken.log"
pyyaml=$KVM_LAUNCH_VENV/bin/python3
# manifest_words FILE CONTAINER FIELD: a container's command or args from a manifest, NUL-terminated
manifest_words() {
	"$pyyaml" - "$@" <<'PY'
import sys, yaml
path, name, field = sys.argv[1:]
for doc in yaml.safe_load_all(open(path)):
    spec = (doc or {}).get("spec", {}).get("template", {}).get("spec", {})
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        if c["name"] == name:
            for word in c.get(field, []):
                sys.stdout.write(word + "\0")
PY
}

# --- one-net ---------------------------------------------------------------------------------------------
echo "# the old container's docker run, on network $net_a (10.213.$x_a.0/24)"
c=kl-dk-$id-vm
containers+=("$c")
disk vm
podman run -d --name "$c" --network "$net_a" "${run_common[@]}" "${disk_args[@]}" -e AUTO_ATTACH=yes \
	"$IMAGE" -device virtio-rng-pci -fw_cfg name=opt/kvmlaunch/iperf3,string=1 >/dev/null 2>>"$work/podman.err"
ip=$(container_net "$c" "$net_a" IPAddress) mac=$(container_net "$c" "$net_a" MacAddress)
if ready=$(wait_ready "$c"); then
	ok "one-net: the guest is up (KVMLAUNCH-READY) $ready s after the container started"
	check "one-net: the guest got the container's IP $ip/24 and MAC $mac" \
		grep -q " addr=$ip/24 gw=10.213.$x_a.1 " <(nic_line "$c" "$mac")
	check "one-net: the CMD words end QEMU's command line, in order" \
		grep -q "starting /usr/bin/qemu-system-x86_64 .* -device virtio-rng-pci -fw_cfg name=opt/kvmlaunch/iperf3,string=1$" <(logs "$c")
	check "one-net: the guest saw them (-fw_cfg iperf3=1: it started iperf3)" \
		grep -q "^KVMLAUNCH-IPERF3 port=5201" <(logs "$c")
	check "one-net: the host pings $ip" quietly ping -c 3 -i 0.3 -W 2 -q "$ip"
	check "one-net: $ip answers from the container's MAC $mac" \
		grep -q "lladdr $mac " <(ip neigh show "$ip")
	ifaces=$(podman exec "$c" kvm-launch --list-ifaces --json 2>/dev/null)
	check "one-net: kvm-launch --list-ifaces --json in the running container lists eth0" grep -q '"eth0"' <<<"$ifaces"
	check "one-net: ... and no interface of the container holds $ip any more: the VM does" \
		not grep -q "\"$ip/" <<<"$ifaces"
	# shellcheck disable=SC2016 # $1 is expanded by the inner bash
	check "one-net: a TCP connection from the host reaches the guest's iperf3 on $ip:5201" \
		timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/5201"' _ "$ip"
	check "one-net: the HEALTHCHECK passes (podman healthcheck run)" \
		quietly podman healthcheck run "$c"
	check "one-net: kvm-launch status in the container says VM running" \
		grep -qx "VM running" <(podman exec "$c" kvm-launch status 2>/dev/null)
	stop_gracefully "$c"
	check "one-net: the health check fails once the VM is gone" \
		not quietly podman healthcheck run "$c"
else
	not_ok "one-net: the guest did not reach KVMLAUNCH-READY within $READY_TIMEOUT s"
	show_logs "$c"
fi

# --- two-nets --------------------------------------------------------------------------------------------
echo "# a second network connected before start ($net_a, $net_b)"
listing=$(podman run --rm --network "$net_a" --network "$net_b" "${KVM_LAUNCH_ULIMITS[@]}" -e AUTO_ATTACH=yes "$IMAGE" --list-ifaces 2>/dev/null)
# AUTO_ATTACH=yes orders NICs by name (podman may create eth1 before eth0): eth0 is NIC 0, eth1 NIC 1.
check "two-nets: kvm-launch --list-ifaces (changes nothing) would attach eth0 as NIC 0" \
	grep -Eq '^[0-9]+ +eth0 .* yes \(NIC 0\)' <<<"$listing" || echo "$listing"
check "two-nets: ... and eth1 as NIC 1" \
	grep -Eq '^[0-9]+ +eth1 .* yes \(NIC 1\)' <<<"$listing" || echo "$listing"
c=kl-dk-$id-two
containers+=("$c")
disk two
podman create --name "$c" --network "$net_a" "${run_common[@]}" "${disk_args[@]}" -e AUTO_ATTACH=yes "$IMAGE" \
	>/dev/null 2>>"$work/podman.err"
check "two-nets: podman network connect $net_b before start" podman network connect "$net_b" "$c"
podman start "$c" >/dev/null 2>>"$work/podman.err"
ip_a=$(container_net "$c" "$net_a" IPAddress) mac_a=$(container_net "$c" "$net_a" MacAddress)
ip_b=$(container_net "$c" "$net_b" IPAddress) mac_b=$(container_net "$c" "$net_b" MacAddress)
if ready=$(wait_ready "$c"); then
	ok "two-nets: the guest is up $ready s after the start"
	check "two-nets: the guest has two NICs" test "$(logs "$c" | grep -c '^KVMLAUNCH-NIC ')" -eq 2
	check "two-nets: NIC with $mac_a has $ip_a/24" grep -q " addr=$ip_a/24 " <(nic_line "$c" "$mac_a")
	check "two-nets: NIC with $mac_b has $ip_b/24" grep -q " addr=$ip_b/24 " <(nic_line "$c" "$mac_b")
	check "two-nets: the host pings $ip_a" quietly ping -c 2 -i 0.3 -W 2 -q "$ip_a"
	check "two-nets: the host pings $ip_b" quietly ping -c 2 -i 0.3 -W 2 -q "$ip_b"
	stop_gracefully "$c"
else
	not_ok "two-nets: the guest did not reach KVMLAUNCH-READY within $READY_TIMEOUT s"
	show_logs "$c"
fi

# --- restart ---------------------------------------------------------------------------------------------
echo "# restarts on network $net_a: podman restart, then SIGKILL of PID 1 and podman start"
c=kl-dk-$id-restart
containers+=("$c")
disk restart
# A stated MAC and address, as a deployment that restarts VMs states them: podman (netavark) draws a new
# MAC and the next free address at every start otherwise; the VM must come back with these.
fixed_mac=$(printf '02:6b:6c:%02x:%02x:%02x' $((id >> 16 & 255)) $((id >> 8 & 255)) $((id & 255)))
fixed_ip=10.213.$x_a.200
podman run -d --name "$c" --network "$net_a" --mac-address "$fixed_mac" --ip "$fixed_ip" "${run_common[@]}" "${disk_args[@]}" \
	-e AUTO_ATTACH=yes "$IMAGE" >/dev/null 2>>"$work/podman.err"
ip=$(container_net "$c" "$net_a" IPAddress) mac=$(container_net "$c" "$net_a" MacAddress)
check "restart: the container has the MAC it was given ($fixed_mac)" test "$mac" = "$fixed_mac"
check "restart: the container has the address it was given ($fixed_ip)" test "$ip" = "$fixed_ip"
# seen_from_host LABEL BOOT: after boot number BOOT, the VM has the container's identity, seen from the host
seen_from_host() {
	local label=$1 boot=$2 now_ip now_mac
	now_ip=$(container_net "$c" "$net_a" IPAddress) now_mac=$(container_net "$c" "$net_a" MacAddress)
	check "restart: $label: podman reports the same address $ip and MAC $mac (now $now_ip, $now_mac)" \
		test "$now_ip/$now_mac" = "$ip/$mac"
	check "restart: $label: boot $boot's guest got $ip/24 with MAC $mac" \
		grep -q " addr=$ip/24 " <(logs "$c" | grep '^KVMLAUNCH-NIC ' | sed -n "${boot}p" | grep -- " mac=$mac ")
	ip neigh flush to "$ip" 2>/dev/null # the host learns the MAC again from this boot's VM
	check "restart: $label: the host pings $ip" quietly ping -c 3 -i 0.3 -W 2 -q "$ip"
	check "restart: $label: $ip answers from MAC $mac" grep -q "lladdr $mac " <(ip neigh show "$ip")
}
if ready=$(wait_ready "$c" 1); then
	ok "restart: the guest is up $ready s after the first start"
	seen_from_host "first start" 1
	podman restart "$c" >/dev/null 2>>"$work/podman.err"
	check "restart: podman restart stopped the first VM gracefully (kvm-launch exited 0 after the power-off)" \
		test "$(logs "$c" | grep -c 'the guest powered off; exiting 0')" -eq 1
	if ready=$(wait_ready "$c" 2); then
		ok "restart: the guest is up again $ready s after podman restart"
		seen_from_host "after podman restart" 2
		pid=$(state "$c" Pid)
		check "restart: SIGKILL of the container's PID 1 (host PID $pid, kvm-launch)" \
			bash -c '[[ $(cat "/proc/$1/comm") == kvm-launch ]] && kill -KILL "$1"' _ "$pid"
		for _ in $(seq 60); do [[ $(state "$c" Status) == running ]] || break; sleep 0.5; done
		code=$(state "$c" ExitCode)
		check "restart: the container ended by SIGKILL (exit code $code, 137 = 128 + 9)" test "$code" = 137
		podman start "$c" >/dev/null 2>>"$work/podman.err"
		if ready=$(wait_ready "$c" 3); then
			ok "restart: the guest is up again $ready s after the SIGKILL and podman start"
			seen_from_host "after SIGKILL and podman start" 3
			stop_gracefully "$c"
		else
			not_ok "restart: the guest did not come back within $READY_TIMEOUT s after the SIGKILL and podman start"
			show_logs "$c"
		fi
	else
		not_ok "restart: the guest did not come back within $READY_TIMEOUT s after podman restart"
		show_logs "$c"
	fi
else
	not_ok "restart: the guest did not reach KVMLAUNCH-READY within $READY_TIMEOUT s"
	show_logs "$c"
fi

# --- host-net --------------------------------------------------------------------------------------------
x_h=250
while ((x_h == x_a || x_h == x_b)) || ip -4 route show | grep -q "^10\.213\.$x_h\."; do x_h=$((x_h - 1)); done
link=kldk${id}h ns=kl-dk-$id-peer
echo "# --net=host with AUTO_ATTACH=no ATTACH_IFACES=$link (a veth to namespace $ns, 10.213.$x_h.0/24)"
namespaces+=("$ns")
links+=("$link")
ip netns add "$ns"
# The simulated container's veth (scripts/fixture.sh), with the host as the container's side.
fixture_veth "" "$ns" "$link" p0 "10.213.$x_h.2/24" "10.213.$x_h.1/24" || abort "cannot make the veth $link to $ns"
link_mac=$(cat "/sys/class/net/$link/address")
c=kl-dk-$id-host
containers+=("$c")
disk host
podman run -d --name "$c" --net=host "${run_common[@]}" "${disk_args[@]}" -e AUTO_ATTACH=no -e ATTACH_IFACES="$link" \
	"$IMAGE" >/dev/null 2>>"$work/podman.err"
if ready=$(wait_ready "$c"); then
	ok "host-net: the guest is up $ready s after the start"
	check "host-net: the guest has exactly one NIC" test "$(logs "$c" | grep -c '^KVMLAUNCH-NIC ')" -eq 1
	check "host-net: it has $link's MAC $link_mac and address 10.213.$x_h.2/24" \
		grep -q " addr=10.213.$x_h.2/24 " <(nic_line "$c" "$link_mac")
	check "host-net: the namespace behind $link pings the VM at 10.213.$x_h.2" \
		quietly ip netns exec "$ns" ping -c 3 -i 0.3 -W 2 -q "10.213.$x_h.2"
	stop_gracefully "$c"
	check "host-net: $link has its MAC $link_mac back" test "$(cat "/sys/class/net/$link/address")" = "$link_mac"
	check "host-net: $link has 10.213.$x_h.2/24 back" grep -q " 10.213.$x_h.2/24 " <(ip -4 -o addr show dev "$link")
else
	not_ok "host-net: the guest did not reach KVMLAUNCH-READY within $READY_TIMEOUT s"
	show_logs "$c"
fi

# --- compute ---------------------------------------------------------------------------------------------
echo "# the compute-node pod (docker/k8s/compute-node.yaml) against etcd"
etcd_bin=$(command -v etcd) || abort "etcd is missing: run 'scripts/deps.sh docker/packages-host.txt'"
etcd_ip=10.213.$x_a.250
etcd=kl-dk-$id-etcd
containers+=("$etcd")
podman run -d --name "$etcd" --network "$net_a" --ip "$etcd_ip" "${KVM_LAUNCH_ULIMITS[@]}" \
	-v "$etcd_bin:/usr/local/bin/etcd:ro" --entrypoint etcd "$IMAGE" \
	--name ct --data-dir /tmp/etcd --listen-client-urls http://0.0.0.0:2379 --advertise-client-urls "http://$etcd_ip:2379" \
	--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
	--initial-cluster ct=http://127.0.0.1:2380 >/dev/null 2>>"$work/podman.err"
etcd_env=(-e ETCD_ENDPOINTS="http://$etcd_ip:2379" -e ETCD_PREFIX=/openstack-k8s -e ETCD_TIMEOUT=5)
mkdir -p "$work/seed" "$work/config"
cat >"$work/seed/general" <<SEED
general/VM_MEMORY=320M
general/NOVA_HOST=compute-$id
general/RABBIT_PASSWORD=s3cret=
SEED
cat >"$work/seed/compute" <<'SEED'
compute/nova/nova.conf/DEFAULT/host=$NOVA_HOST
compute/nova/nova.conf/DEFAULT/transport_url=rabbit://nova:${RABBIT_PASSWORD}@rabbitmq:5672/
compute/neutron/neutron.conf/DEFAULT/core_plugin=ml2
compute/neutron/openvswitch_agent.ini/ovs/bridge_mappings=physnet1:br-ex
SEED
loaded=no
for _ in $(seq 30); do
	if podman run --rm --network "$net_a" "${KVM_LAUNCH_ULIMITS[@]}" "${etcd_env[@]}" -v "$work/seed:/seed:ro" \
		"$IMAGE" config load /seed >"$work/load.log" 2>&1; then
		loaded=yes
		break
	fi
	sleep 1
done
check "compute: kvm-launch config load (in the image) put the files into etcd" test $loaded = yes
[[ $loaded == yes ]] || tail -n 5 "$work/load.log"
mapfile -d '' -t init_command < <(manifest_words "$here/k8s/compute-node.yaml" config command)
status=0
podman run --rm --network "$net_a" "${KVM_LAUNCH_ULIMITS[@]}" "${etcd_env[@]}" -v "$work/config:/config" \
	--entrypoint "${init_command[0]}" "$IMAGE" "${init_command[@]:1}" >"$work/render.log" 2>&1 || status=$?
check "compute: the manifest's init container 'config' ran (exit status $status)" test "$status" -eq 0 ||
	tail -n 5 "$work/render.log"
user_data=$work/config/user-data
check "compute: the user data is #cloud-config" test "$(head -n 1 "$user_data" 2>/dev/null)" = "#cloud-config"
guest_file() { # guest_file PATH: the content write_files gives PATH in the user data
	"$pyyaml" - "$user_data" "$1" <<'PY'
import sys, yaml
for f in yaml.safe_load(open(sys.argv[1]))["write_files"]:
    if f["path"] == sys.argv[2]:
        sys.stdout.write(f["content"])
PY
}
check "compute: nova.conf in the user data, \$NOVA_HOST from general/ expanded" \
	grep -qx "host *= *compute-$id" <(guest_file /etc/nova/etcd/nova.conf)
check "compute: nova.conf: \${RABBIT_PASSWORD} expanded, its = kept" \
	grep -q "^transport_url *= *rabbit://nova:s3cret=@rabbitmq:5672/$" <(guest_file /etc/nova/etcd/nova.conf)
check "compute: neutron.conf in the user data" grep -q "^core_plugin *= *ml2$" <(guest_file /etc/neutron/etcd/neutron.conf)
check "compute: openvswitch_agent.ini in the user data" \
	grep -q "^bridge_mappings *= *physnet1:br-ex$" <(guest_file /etc/neutron/etcd/openvswitch_agent.ini)
check "compute: the init step printed no secret" not grep -q s3cret "$work/render.log"
mapfile -d '' -t vm_args < <(manifest_words "$here/k8s/compute-node.yaml" vm args)
c=kl-dk-$id-compute
containers+=("$c")
disk compute
podman run -d --name "$c" --network "$net_a" --privileged "${KVM_LAUNCH_ULIMITS[@]}" --stop-timeout "$STOP_TIMEOUT" \
	"${disk_args[@]}" -v "$work/config:/config:ro" -e AUTO_ATTACH=yes -e CLOUD_INIT_USER_DATA=/config/user-data "${etcd_env[@]}" \
	"$IMAGE" "${vm_args[@]}" \
	>/dev/null 2>>"$work/podman.err"
if ready=$(wait_ready "$c"); then
	ok "compute: the VM is up $ready s after the start, with the manifest's arguments (${vm_args[*]})"
	check "compute: the launcher took VM_MEMORY=320M from etcd's general/ (QEMU -m 320)" \
		grep -q 'starting /usr/bin/qemu-system-x86_64 .* -m 320 ' <(logs "$c")
	check "compute: QEMU gives the guest the NoCloud seed with the user data (a read-only drive)" \
		grep -q 'starting /usr/bin/qemu-system-x86_64 .*-device virtio-blk-pci,drive=seed0' <(logs "$c")
	check "compute: no secret value in the logs" not grep -q s3cret <(logs "$c")
	stop_gracefully "$c"
else
	not_ok "compute: the VM did not reach KVMLAUNCH-READY within $READY_TIMEOUT s"
	show_logs "$c"
fi

# --- libvirt (helper libvirt's section) -------------------------------------------------------------------
# VM_BACKEND=libvirt: the same VM run by the private libvirtd kvm-launch starts in the container; virsh in
# the container works without arguments (the image sets LIBVIRT_DEFAULT_URI); podman stop powers it off.
libvirt_section() {
	echo "# VM_BACKEND=libvirt on network $net_a, image $LIBVIRT_IMAGE"
	local c=kl-dk-$id-lv ip mac ready
	containers+=("$c")
	disk lv
	podman run -d --name "$c" --network "$net_a" "${run_common[@]}" "${disk_args[@]}" -e AUTO_ATTACH=yes \
		-e VM_BACKEND=libvirt "$LIBVIRT_IMAGE" >/dev/null 2>>"$work/podman.err"
	ip=$(container_net "$c" "$net_a" IPAddress) mac=$(container_net "$c" "$net_a" MacAddress)
	if ready=$(wait_ready "$c"); then
		ok "libvirt: the guest is up (KVMLAUNCH-READY) $ready s after the container started"
		check "libvirt: the guest got the container's IP $ip/24 and MAC $mac" \
			grep -q " addr=$ip/24 " <(nic_line "$c" "$mac")
		check "libvirt: the host pings $ip" quietly ping -c 3 -i 0.3 -W 2 -q "$ip"
		check "libvirt: virsh list in the container shows the domain running" \
			grep -q " running" <(podman exec "$c" virsh list 2>/dev/null)
		check "libvirt: virsh dumpxml shows the NIC with the container's MAC" \
			grep -q "<mac address='$mac'/>" <(podman exec "$c" sh -c 'virsh dumpxml "$(virsh list --name | head -n 1)"' 2>/dev/null)
		check "libvirt: kvm-launch status asks libvirt: VM running" \
			grep -q "^VM running" <(podman exec -e VM_BACKEND=libvirt "$c" kvm-launch status 2>/dev/null)
		stop_gracefully "$c"
	else
		not_ok "libvirt: the guest did not reach KVMLAUNCH-READY within $READY_TIMEOUT s"
		show_logs "$c"
	fi
}
libvirt_section

# --- shared-run (helper ipv6gw's section) -------------------------------------------------------------------
# Issue 11 item 1 with the real runtime: the old container's documented `-v /var/run:/var/run` shares the
# host's /run between containers. Two containers of the image, started at the same moment with one host
# folder as /run: both VMs are reachable; `podman stop` of the first powers off that VM (exit 0) and the
# second still answers ping and `kvm-launch status`; then it stops the same way.
shared_run_section() {
	echo "# two containers sharing one host folder as /run, on network $net_b"
	local shared=$work/shared-run first=kl-dk-$id-sr1 second=kl-dk-$id-sr2 c ready ip1 ip2 mac1 mac2
	mkdir -p "$shared"
	containers+=("$first" "$second")
	disk sr1
	local disk1=("${disk_args[@]}")
	disk sr2
	local disk2=("${disk_args[@]}")
	podman run -d --name "$first" --network "$net_b" "${run_common[@]}" "${disk1[@]}" -v "$shared:/run" \
		-e AUTO_ATTACH=yes "$IMAGE" >/dev/null 2>>"$work/podman.err" &
	podman run -d --name "$second" --network "$net_b" "${run_common[@]}" "${disk2[@]}" -v "$shared:/run" \
		-e AUTO_ATTACH=yes "$IMAGE" >/dev/null 2>>"$work/podman.err" &
	wait
	ip1=$(container_net "$first" "$net_b" IPAddress) mac1=$(container_net "$first" "$net_b" MacAddress)
	ip2=$(container_net "$second" "$net_b" IPAddress) mac2=$(container_net "$second" "$net_b" MacAddress)
	for c in "$first" "$second"; do
		if ready=$(wait_ready "$c"); then
			ok "shared-run: $c's guest is up (KVMLAUNCH-READY) $ready s after the start"
		else
			not_ok "shared-run: $c's guest did not reach KVMLAUNCH-READY within $READY_TIMEOUT s"
			show_logs "$c"
			return
		fi
	done
	check "shared-run: the first guest has its container's $ip1 and MAC $mac1" grep -q " addr=$ip1/24 " <(nic_line "$first" "$mac1")
	check "shared-run: the second guest has its container's $ip2 and MAC $mac2" grep -q " addr=$ip2/24 " <(nic_line "$second" "$mac2")
	check "shared-run: the host pings the first VM ($ip1)" quietly ping -c 2 -i 0.3 -W 2 -q "$ip1"
	check "shared-run: the host pings the second VM ($ip2)" quietly ping -c 2 -i 0.3 -W 2 -q "$ip2"
	check "shared-run: each launcher made its own run directory in the shared folder" \
		test "$(find "$shared/kvm-launch" -mindepth 1 -maxdepth 1 -name 'vm-*' | wc -l)" = 2
	stop_gracefully "$first"
	check "shared-run: the second VM still answers ping after the first one's stop" quietly ping -c 2 -i 0.3 -W 2 -q "$ip2"
	check "shared-run: kvm-launch status in the second container: VM running" \
		grep -qx "VM running" <(podman exec "$second" kvm-launch status 2>/dev/null)
	check "shared-run: the second guest never powered off" not grep -q '^KVMLAUNCH-POWEROFF' <(logs "$second")
	stop_gracefully "$second"
	check "shared-run: both run directories are gone from the shared folder" \
		test "$(find "$shared/kvm-launch" -mindepth 1 -maxdepth 1 -name 'vm-*' | wc -l)" = 0
}
shared_run_section

finish
