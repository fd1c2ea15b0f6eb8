#!/usr/bin/env bash
# The classic way to turn a container into a VM, as a baseline for kvm-launch's setup latency:
# per interface, external `ip`/`brctl`/`mknod` commands and one dnsmasq, then exec "QEMU".
#
#   classic-setup.sh macvtap|bridge RUN_DIR     (inside the container's network namespace)
#
# It does the same work per interface as kvm-launch: swap the MAC (the VM gets the original one),
# move the address off the interface, create the VM's link (a macvtap, or a bridge with the
# interface and a tap as ports), create and address the container's own device toward the VM
# (a macvlan, or the bridge), open the macvtap device, start a DHCP server (dnsmasq) for the
# VM's one address on it; then exec $LAUNCHER with a -netdev/-device pair per interface.
# The container side takes the old container's address trick (the guest address with its prefix
# one bit shorter and that bit flipped), because dnsmasq only serves a subnet it has an address in.
# Nothing is undone: the benchmark deletes the namespace and the dnsmasq processes afterwards.
set -euo pipefail
mode=${1:?usage: classic-setup.sh macvtap|bridge RUN_DIR}
run=${2:?usage: classic-setup.sh macvtap|bridge RUN_DIR}
launcher=${LAUNCHER:?LAUNCHER must name the QEMU binary}
mkdir -p "$run"

ip2int() { local IFS=.; set -- $1; echo $(((($1 << 24) | ($2 << 16) | ($3 << 8) | $4))); }
int2ip() { echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"; }
random_mac() { printf '02:%02x:%02x:%02x:%02x:%02x' $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256)); }

dns=${DNS_SERVERS:-$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf)}
qemu_args=()
n=0
for dir in /sys/class/net/*; do
	iface=${dir##*/}
	[[ $iface == lo || -d $dir/bridge || -e $dir/brport ]] && continue
	(($(cat "$dir/flags") & 1)) || continue  # administratively down
	mac=$(cat "$dir/address")
	cidr=$(ip -4 -o addr show dev "$iface" | awk '{ print $4; exit }')
	[[ -n $cidr ]] || continue
	gateway=$(ip -4 route show default dev "$iface" | awk '{ print $3; exit }')
	address=${cidr%/*} prefix=${cidr#*/}
	bit=$((1 << (32 - prefix)))
	server="$(int2ip $(($(ip2int "$address") ^ bit)))/$((prefix - 1))"
	mask=$(int2ip $(((0xffffffff << (32 - prefix)) & 0xffffffff)))

	ip link set dev "$iface" address "$(random_mac)"
	ip addr del "$cidr" dev "$iface"
	if [[ $mode == macvtap ]]; then
		vm=mvt$n side=srv$n
		ip link add link "$iface" name "$vm" type macvtap mode bridge
		ip link set dev "$vm" address "$mac" up
		ip link add link "$iface" name "$side" type macvlan mode bridge
		ip addr add "$server" dev "$side"
		ip link set dev "$side" up
		index=$(cat "/sys/class/net/$vm/ifindex")
		IFS=: read -r major minor <"/sys/class/net/$vm/macvtap/tap$index/dev"
		mknod "$run/tap$index" c "$major" "$minor"
		fd=$((10 + n))
		eval "exec $fd<>\"$run/tap$index\""
		qemu_args+=(-netdev "tap,id=net$n,fd=$fd" -device "virtio-net-pci,netdev=net$n,mac=$mac")
	else
		vm=tap$n side=br$n
		brctl addbr "$side"
		brctl addif "$side" "$iface"
		ip tuntap add dev "$vm" mode tap
		brctl addif "$side" "$vm"
		ip link set dev "$vm" up
		ip addr add "$server" dev "$side"
		ip link set dev "$side" up
		qemu_args+=(-netdev "tap,id=net$n,ifname=$vm,script=no,downscript=no" -device "virtio-net-pci,netdev=net$n,mac=$mac")
	fi
	dnsmasq --conf-file=/dev/null --port=0 --no-resolv --no-hosts --user=root \
		--interface="$side" --bind-interfaces --pid-file="$run/dnsmasq-$n.pid" --dhcp-leasefile="$run/leases-$n" \
		--dhcp-range="$address,$address,infinite" --dhcp-host="$mac,$address" --dhcp-option=option:netmask,"$mask" \
		${gateway:+--dhcp-option=option:router,$gateway} ${dns:+--dhcp-option=option:dns-server,$dns}
	n=$((n + 1))
done
exec "$launcher" -nodefaults -machine q35 -m 256 "${qemu_args[@]}" "$@"
