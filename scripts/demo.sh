#!/usr/bin/env bash
# make demo: a simulated container (a network namespace with a veth to a "network" namespace, and a
# PID namespace in which kvm-launch is PID 1) becomes a VM that takes over the container's IP and
# MAC; the network pings it; it is stopped gracefully; the container's network is checked restored.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source "$root/scripts/fixture.sh"
bin="$root/.build/debug/kvm-launch"
guest="$root/image/out/test-guest.qcow2"
[[ $(id -u) -eq 0 ]] || { echo "demo: run as root (it makes network namespaces)"; exit 1; }
[[ -x $bin && -f $guest ]] || { echo "demo: run it as 'make demo' (builds kvm-launch and the guest first)"; exit 1; }

suffix=$$
ct="kl-demo-ct-$suffix" net="kl-demo-net-$suffix"
work=$(mktemp -d /tmp/kvm-launch-demo.XXXXXX)
launcher_pid=""
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f s", b - a }'; }

cleanup() {
  set +e
  if [[ -n $launcher_pid ]] && kill -0 "$launcher_pid" 2>/dev/null; then kill -KILL "$launcher_pid"; fi
  exec 3>&- 2>/dev/null
  fixture_destroy "$ct" "$net"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted, cleaning up"; exit 130' INT TERM

step "A container: namespace $ct, eth0 10.88.0.2/24 via a veth to the network namespace $net"
fixture_container "$ct" "$net" 1 88 demo.example
container_mac=$(ip netns exec "$ct" cat /sys/class/net/eth0/address)
before=$(ip -n "$ct" -4 -o addr show | awk '{print $2, $4}'; ip -n "$ct" route)
echo "container eth0: MAC $container_mac, address 10.88.0.2/24, gateway 10.88.0.1"

step "What kvm-launch would attach (kvm-launch --list-ifaces)"
ip netns exec "$ct" env AUTO_ATTACH=yes "$bin" --list-ifaces

step "Launching: kvm-launch is PID 1 of a new PID namespace inside the container's network namespace"
# The overlay's backing file sits next to it: kvm-launch follows backing files only inside the image's folder.
cp "$guest" "$work/test-guest.qcow2"
qemu-img create -q -f qcow2 -b test-guest.qcow2 -F qcow2 "$work/disk.qcow2"
mkfifo "$work/console-in"
exec 3<>"$work/console-in"
start=$(now)
ip netns exec "$ct" unshare --pid --fork --mount-proc --kill-child \
  env -i PATH="$PATH" AUTO_ATTACH=yes VM_IMAGE="$work/disk.qcow2" VM_MEMORY=256M \
  KVM_LAUNCH_RUN_DIR="$work/run" "$bin" <&3 >"$work/console.log" 2>"$work/launcher.log" &
launcher_pid=$!
( tail -n +1 -f "$work/console.log" --pid=$$ 2>/dev/null | sed -u 's/\r$//; s/^/  console │ /' ) &

wait_for() {  # wait_for FILE TEXT SECONDS
  local deadline=$((SECONDS + $3))
  until grep -q -- "$2" "$1" 2>/dev/null; do
    kill -0 "$launcher_pid" 2>/dev/null || { echo "demo: kvm-launch exited early:"; cat "$work/launcher.log"; exit 1; }
    ((SECONDS < deadline)) || { echo "demo: timed out waiting for '$2'"; cat "$work/launcher.log"; exit 1; }
    sleep 0.2
  done
}
wait_for "$work/console.log" KVMLAUNCH-READY 180
ready=$(now)
pid1=$(pgrep -P "$launcher_pid" -x kvm-launch || true)

step "From the network: ping 10.88.0.2 (the container's address, now the VM's)"
ip netns exec "$net" ping -c 3 -i 0.3 -W 2 10.88.0.2
answered=$(now)
seen_mac=$(ip -n "$net" neigh show 10.88.0.2 | awk '{for (i = 1; i <= NF; i++) if ($i == "lladdr") print $(i + 1)}')
echo "the network sees 10.88.0.2 at $seen_mac (the container's MAC was $container_mac)"
[[ $seen_mac == "$container_mac" ]] || { echo "demo: MAC mismatch"; exit 1; }
echo "the container's eth0 now has MAC $(ip netns exec "$ct" cat /sys/class/net/eth0/address) and the VM has its identity"

step "Typing on the console: uname -r"
printf 'uname -r\n' >&3
sleep 1

step "Stopping gracefully: SIGTERM to kvm-launch (PID 1 in its namespace), as docker stop does"
stop=$(now)
kill -TERM "${pid1:-$launcher_pid}"
status=0
wait "$launcher_pid" || status=$?
stopped=$(now)
launcher_pid=""
grep -q KVMLAUNCH-POWEROFF "$work/console.log" && echo "the guest powered itself off (ACPI power button)"
after=$(ip -n "$ct" -4 -o addr show | awk '{print $2, $4}'; ip -n "$ct" route)
restored=no
[[ "$before" == "$after" && $(ip netns exec "$ct" cat /sys/class/net/eth0/address) == "$container_mac" ]] && restored=yes
[[ $restored == yes ]] || printf 'before:\n%s\nafter:\n%s\n' "$before" "$after"

step "Summary"
nic=$(grep -m1 KVMLAUNCH-NIC "$work/console.log" | tr -d '\r' || true)
cat <<SUMMARY
  guest NIC line        ${nic#*KVMLAUNCH-NIC }
  launch to guest ready $(elapsed "$start" "$ready")
  first ping answered   $(elapsed "$start" "$answered") after launch
  graceful stop         $(elapsed "$stop" "$stopped"), kvm-launch exit status $status
  container restored    $restored (eth0 MAC, addresses and routes as before)
  launcher log          $(grep -c . "$work/launcher.log") lines; last: $(tail -n 1 "$work/launcher.log" | cut -c1-100)
SUMMARY
[[ $status -eq 0 && $restored == yes ]]
