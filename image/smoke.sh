#!/usr/bin/env bash
# Smoke test of the test guest: builds it (cached), boots it twice under QEMU/TCG from its own boot loader
# with two user-mode NICs and checks the console protocol end to end. See image/README.md.
#
# Usage: image/smoke.sh [OUTDIR]      (default OUTDIR: image/out)
#   boot 1: virtio disk + 2 virtio NICs: KVMLAUNCH-NIC lines and READY, the console shell, iperf3 -s started
#           from the console and reached from the host, marker-write, ACPI power button -> POWEROFF -> exit.
#   boot 2: IDE disk + virtio/e1000 NICs, fw_cfg knobs ignore-acpi=1 and iperf3=1: the marker from boot 1
#           is printed at boot, the power button is ignored, `acpi-ignore off`, power button -> exit.
#   then:   qemu-img check of the overlay the boots wrote to (the built image itself is never modified).
# Timeouts bound every wait; no fixed sleeps. Prints boot-to-READY times.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/out}
"$here/build.sh" "$out"
image=$(cd "$out" && pwd)/test-guest.qcow2

READY_TIMEOUT=${READY_TIMEOUT:-120}
STEP_TIMEOUT=${STEP_TIMEOUT:-30}

work=$(mktemp -d /tmp/kvmlaunch-smoke.XXXXXX)
VM_PID=
cleanup() {
	if [[ -n $VM_PID ]] && kill -0 "$VM_PID" 2>/dev/null; then
		kill "$VM_PID" 2>/dev/null || true
		wait "$VM_PID" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "smoke: FAIL: $*" >&2
	echo "smoke: --- last console lines ($work/console.log) ---" >&2
	tail -n 40 "$work/console.log" >&2 || true
	echo "smoke: --- qemu stderr ---" >&2
	cat "$work/qemu.err" >&2 2>/dev/null || true
	exit 1
}
ok() { echo "smoke: ok: $*"; }
now() { echo "${EPOCHREALTIME/./}"; } # microseconds
ms_since() { echo $((($(now) - $1) / 1000)); }

# boot NAME QEMU-ARGS...: start QEMU with the guest's serial console on a coprocess pipe and QMP on a socket.
boot() {
	local name=$1
	shift
	QMP=$work/qmp-$name.sock
	echo "=== boot $name" >>"$work/console.log"
	BOOT_START=$(now)
	coproc QEMU {
		exec qemu-system-x86_64 -accel tcg -nodefaults -display none -m 256 \
			-serial stdio -qmp "unix:$QMP,server=on,wait=off" "$@" 2>>"$work/qemu.err"
	}
	VM_PID=$QEMU_PID
	wait_qmp_socket
}

# expect REGEX [TIMEOUT]: read console lines until one matches REGEX (bash =~); the line is left in $LINE.
expect() {
	local regex=$1 deadline=$(($(now) + ${2:-$STEP_TIMEOUT} * 1000000)) left line
	while :; do
		left=$(((deadline - $(now)) / 1000))
		((left > 0)) || fail "timed out waiting for console line /$regex/"
		if IFS= read -r -t "$((left / 1000)).$(printf '%03d' $((left % 1000)))" -u "${QEMU[0]}" line; then
			line=${line//$'\r'/}
			printf '%s\n' "$line" >>"$work/console.log"
			if [[ $line =~ $regex ]]; then
				LINE=$line
				return 0
			fi
		else
			[[ -n $line ]] && printf '%s' "${line//$'\r'/}" >>"$work/console.log"
			kill -0 "$VM_PID" 2>/dev/null || fail "QEMU exited while waiting for /$regex/"
		fi
	done
}

# type TEXT: type a command line on the guest's serial console.
type_line() { printf '%s\r' "$1" >&"${QEMU[1]}"; }

# qmp COMMAND: run one QMP command on the current QEMU (python3: greeting, qmp_capabilities, command).
qmp() {
	python3 - "$QMP" "$1" <<'EOF' || fail "QMP command $1 failed"
import json, socket, sys
path, command = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_UNIX)
sock.settimeout(10)
sock.connect(path)
stream = sock.makefile("rw")
def reply():
    while True:
        message = json.loads(stream.readline())
        if "return" in message or "error" in message:
            return message
stream.readline()  # greeting
for request in ("qmp_capabilities", command):
    stream.write(json.dumps({"execute": request}) + "\n")
    stream.flush()
    answer = reply()
    if "error" in answer:
        sys.exit(f"{request}: {answer['error']}")
EOF
}

# wait_qmp_socket: QEMU creates the QMP socket before the guest runs; wait until it exists.
wait_qmp_socket() {
	local deadline=$(($(now) + STEP_TIMEOUT * 1000000))
	until [[ -S $QMP ]]; do
		kill -0 "$VM_PID" 2>/dev/null || fail "QEMU exited before creating its QMP socket"
		(($(now) < deadline)) || fail "QEMU did not create $QMP"
		sleep 0.05
	done
}

# expect_exit: wait (bounded) for QEMU to exit by itself and require status 0.
expect_exit() {
	local deadline=$(($(now) + STEP_TIMEOUT * 1000000)) status=0
	while kill -0 "$VM_PID" 2>/dev/null; do
		(($(now) < deadline)) || fail "QEMU did not exit after the guest powered off"
		sleep 0.05
	done
	wait "$VM_PID" || status=$?
	VM_PID=
	((status == 0)) || fail "QEMU exited with status $status"
}

# nic_field LINE KEY: the value of KEY=... in a KVMLAUNCH-NIC line.
nic_field() {
	local word
	for word in $1; do
		[[ $word == "$2="* ]] && { echo "${word#*=}"; return; }
	done
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

disk=$work/disk.qcow2
qemu-img create -q -f qcow2 -b "$image" -F qcow2 "$disk"
port=$(free_port)
marker="smoke-$RANDOM-$$"

# --- boot 1 ------------------------------------------------------------------------------------------------
boot one \
	-drive "file=$disk,if=none,id=d0,format=qcow2" -device virtio-blk-pci,drive=d0 \
	-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:5201" \
	-device virtio-net-pci,netdev=n0,mac=52:54:00:aa:00:01 \
	-netdev user,id=n1,net=10.0.3.0/24,domainname=example.com,dnssearch=corp.example \
	-device virtio-net-pci,netdev=n1,mac=52:54:00:aa:00:02
expect '^KVMLAUNCH-NIC name=eth0 ' "$READY_TIMEOUT"
nic0=$LINE
expect '^KVMLAUNCH-NIC name=eth1 '
nic1=$LINE
expect '^KVMLAUNCH-READY$'
boot1_ms=$(ms_since "$BOOT_START")
ok "boot 1 reached READY in $boot1_ms ms"
[[ $nic0 == "KVMLAUNCH-NIC name=eth0 mac=52:54:00:aa:00:01 addr=10.0.2.15/24 gw=10.0.2.2 dns=10.0.2.3 search=- mtu=1500 routes=-" ]] ||
	fail "unexpected eth0 line: $nic0"
[[ $(nic_field "$nic1" mac) == 52:54:00:aa:00:02 && $(nic_field "$nic1" addr) == 10.0.3.15/24 &&
	$(nic_field "$nic1" gw) == 10.0.3.2 && $(nic_field "$nic1" search) == example.com,corp.example ]] ||
	fail "unexpected eth1 line: $nic1"
ok "DHCP on both NICs: $nic1"

type_line 'echo "SHELL-$((6 * 7)) $(tty) $(set -o | grep -c "monitor *on")"'
expect '^SHELL-42 /dev/ttyS0 1$'
ok "console shell answers on /dev/ttyS0 with job control"

type_line 'iperf3 -s -D'
# Until iperf3 listens, slirp's port forward accepts and then resets the connection: retry (bounded).
deadline=$(($(now) + STEP_TIMEOUT * 1000000))
until mbps=$(iperf3 -c 127.0.0.1 -p "$port" -t 1 -J 2>/dev/null | python3 -c '
import json, sys
result = json.load(sys.stdin)
if "error" in result:
    sys.exit(result["error"])
print(int(result["end"]["sum_received"]["bits_per_second"] / 1e6))' 2>/dev/null); do
	(($(now) < deadline)) || fail "iperf3 client cannot reach the guest's iperf3 -s through the port forward"
	sleep 0.2
done
ok "iperf3 in the guest reached through user networking ($mbps Mbit/s under TCG)"

type_line "marker-write $marker"
expect "^KVMLAUNCH-MARKER-WRITTEN=$marker\$"
ok "marker written"

qmp system_powerdown
expect '^KVMLAUNCH-POWEROFF$'
expect_exit
ok "ACPI power button: KVMLAUNCH-POWEROFF and QEMU exited 0"

# --- boot 2 ------------------------------------------------------------------------------------------------
boot two \
	-drive "file=$disk,if=ide,format=qcow2" \
	-fw_cfg name=opt/kvmlaunch/ignore-acpi,string=1 -fw_cfg name=opt/kvmlaunch/iperf3,string=1 \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0 \
	-netdev user,id=n1,net=10.0.3.0/24 -device e1000,netdev=n1
expect '^KVMLAUNCH-ACPI-IGNORE=on$' "$READY_TIMEOUT"
expect '^KVMLAUNCH-MARKER='
[[ $LINE == "KVMLAUNCH-MARKER=$marker" ]] || fail "marker after reboot is '$LINE', want KVMLAUNCH-MARKER=$marker"
ok "marker survived power-off and reboot (IDE disk this time)"
expect '^KVMLAUNCH-NIC name=eth1 .* addr=10\.0\.3\.15/24 '
expect '^KVMLAUNCH-IPERF3 port=5201$'
expect '^KVMLAUNCH-READY$'
boot2_ms=$(ms_since "$BOOT_START")
ok "boot 2 reached READY in $boot2_ms ms (e1000 NIC, iperf3 started by fw_cfg knob)"

qmp system_powerdown
expect '^KVMLAUNCH-ACPI-IGNORED$'
ok "power button ignored with fw_cfg opt/kvmlaunch/ignore-acpi=1"
type_line 'acpi-ignore off'
expect '^KVMLAUNCH-ACPI-IGNORE=off$'
qmp system_powerdown
expect '^KVMLAUNCH-POWEROFF$'
expect_exit
ok "power button obeyed again after acpi-ignore off"

qemu-img check -q "$disk" || fail "qemu-img check found problems in $disk"
qemu-img check -q "$image" || fail "qemu-img check found problems in $image"
ok "qemu-img check clean"
echo "smoke: PASS (boot to READY: ${boot1_ms} ms, ${boot2_ms} ms; image $(du -h --apparent-size "$image" | cut -f1))"
