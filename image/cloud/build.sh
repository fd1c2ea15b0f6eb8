#!/usr/bin/env bash
# Build a Debian 12 cloud guest: debootstrap with systemd, cloud-init, OpenSSH and Debian's kernel, no network
# configuration of its own (cloud-init's NoCloud seed from kvm-launch configures it). A BIOS-bootable qcow2:
# MBR + syslinux on a FAT partition (kernel, initrd) + an ext4 root made with mkfs.ext4 -d (no loop mount).
#
# Usage: image/cloud/build.sh [OUTDIR] [EXTRA_PACKAGES_FILE] [EXTRA_ROOTFS_DIR]
#   default OUTDIR: image/out; writes OUTDIR/cloud-guest.qcow2 (or NAME.qcow2 with IMAGE_NAME=NAME).
#   EXTRA_ROOTFS_DIR is copied over the root after rootfs/ (image/compute/ uses both extras).
# Cached like image/build.sh: rebuilt when this script, the package lists, the overlays or the Debian versions
# change. The root after apt-get is cached too (OUTDIR/cache/NAME.rootfs.tar, keyed by the mirror, the package
# list and the Debian versions), so a change of an overlay only reassembles the disk.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$repo/image/out}
extra_list=${2:-}
extra_rootfs=${3:-}
name=${IMAGE_NAME:-cloud-guest}
mkdir -p "$out"
out=$(cd "$out" && pwd)
image=$out/$name.qcow2
stamp=$out/$name.inputs
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

die() {
	echo "image/cloud/build.sh: $*" >&2
	exit 1
}
# shellcheck source=image/disk.sh
source "$here/../disk.sh"

"$repo/scripts/deps.sh" "$here/host-packages.txt"

packages() {
	grep -hv '^\s*\(#\|$\)' "$here/packages.txt" ${extra_list:+"$extra_list"} | awk '{ print $1 }' | paste -sd, -
}
inputs() {
	echo "mirror $mirror"
	packages
	apt-cache policy linux-image-cloud-amd64 cloud-init netplan.io 2>/dev/null | awk '/Candidate:/ { print $2 }'
	(cd "$here" && find . ../disk.sh -type f -print0 | sort -z | xargs -0 sha256sum)
	# Contents, not paths: a cache copied into another checkout stays valid.
	[[ -n $extra_list ]] && sha256sum < "$extra_list"
	[[ -n $extra_rootfs ]] && (cd "$extra_rootfs" && find . -printf '%m %y %p %l\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum)
	true
}
# What the root after apt-get depends on: the mirror, the packages and their Debian versions.
packages_key() {
	echo "mirror $mirror"
	packages
	apt-cache policy linux-image-cloud-amd64 cloud-init netplan.io $(packages | tr ',' ' ') 2>/dev/null | awk '/Candidate:/ { print $2 }'
	sha256sum < "$here/build.sh"
}
key=$(inputs | sha256sum | cut -d' ' -f1)
if [[ -z ${FORCE:-} && -s $image && -s $stamp && $(cat "$stamp") == "$key" ]]; then
	echo "image/cloud/build.sh: $image is up to date"
	exit 0
fi
[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap)"

start=$SECONDS
work=$(mktemp -d /tmp/kvmlaunch-cloud.XXXXXX)
cleanup() {
	for m in proc sys dev/pts dev; do umount -l "$work/root/$m" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
root=$work/root

rootfs_cache=$out/cache/$name.rootfs.tar
rootfs_key=$(packages_key | sha256sum | cut -d' ' -f1)
if [[ -z ${FORCE:-} && -s $rootfs_cache && $(cat "$rootfs_cache.key" 2>/dev/null) == "$rootfs_key" ]]; then
	echo "image/cloud/build.sh: the root after apt-get is cached ($rootfs_cache)"
	mkdir "$root"
	tar -C "$root" --numeric-owner -xpf "$rootfs_cache"
else
	echo "image/cloud/build.sh: debootstrap bookworm, then $(packages | tr ',' ' ' | wc -w) packages with apt-get in the chroot"
	debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
		{ cp "$work/debootstrap.log" "$out/$name.debootstrap.log"; tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed (log: $out/$name.debootstrap.log)"; }
	# Install the rest with apt inside the chroot, services kept from starting.
	mount -t proc proc "$root/proc"
	mount -t sysfs sys "$root/sys"
	mount --bind /dev "$root/dev"
	mount --bind /dev/pts "$root/dev/pts"
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod +x "$root/usr/sbin/policy-rc.d"
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	{
		chroot "$root" apt-get update -q &&
			DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -q --no-install-recommends $(packages | tr ',' ' ')
	} >"$work/apt.log" 2>&1 || { cp "$work/apt.log" "$out/$name.apt.log"; tail -n 20 "$work/apt.log" >&2; die "apt-get install in the chroot failed (log: $out/$name.apt.log)"; }
	rm -f "$root/usr/sbin/policy-rc.d"
	: >"$root/etc/resolv.conf"
	for m in dev/pts dev sys proc; do umount "$root/$m"; done
	chroot "$root" apt-get clean
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
	mkdir -p "$out/cache"
	tar -C "$root" --numeric-owner -cpf "$rootfs_cache.new" . && mv -f "$rootfs_cache.new" "$rootfs_cache"
	echo "$rootfs_key" >"$rootfs_cache.key"
fi

# Guest settings: serial console, no network configuration of its own, cloud-init with NoCloud only.
cp -a "$here/rootfs/." "$root/"
[[ -n $extra_rootfs ]] && cp -a "$extra_rootfs/." "$root/"
echo "localhost" >"$root/etc/hostname"
: >"$root/etc/machine-id"
printf '/dev/vda2 / ext4 errors=remount-ro 0 1\n' >"$root/etc/fstab"
chroot "$root" systemctl enable serial-getty@ttyS0.service systemd-networkd.service >/dev/null 2>&1 || true
chroot "$root" systemctl mask systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer >/dev/null 2>&1 || true
rm -f "$root"/etc/ssh/ssh_host_*  # made per instance by cloud-init
rm -rf "$root"/usr/share/locale/*  # messages in English only (85 MB in the compute image)

kernel=$(find "$root/boot" -name 'vmlinuz-*' | sort | tail -n 1)
initrd=$(find "$root/boot" -name 'initrd.img-*' | sort | tail -n 1)
[[ -f $kernel && -f $initrd ]] || die "the root has no kernel or initrd in /boot"

# --- disk: MBR + FAT boot partition (syslinux, kernel, initrd) + ext4 root -------------------------------
fat=$work/fat.img
boot_partition "$fat" "$kernel" "$initrd" "root=/dev/vda2 ro console=ttyS0,115200 net.ifnames=0" -n CLOUDBOOT
root_start=$(( fat_start + fat_sectors ))
root_mib=$(( $(du -sm "$root" | cut -f1) * 3 / 2 + 512 ))
root_sectors=$(( root_mib * 2048 ))

ext=$work/root.img
mkfs.ext4 -q -L cloudroot -d "$root" "$ext" "${root_mib}M"

raw=$work/disk.raw
truncate -s $(( (root_start + root_sectors) * 512 )) "$raw"
sfdisk --quiet "$raw" <<PART
label: dos
start=$fat_start, size=$fat_sectors, type=6, bootable
start=$root_start, size=$root_sectors, type=83
PART
bootable_disk "$raw" "$fat"
dd if="$ext" of="$raw" bs=512 seek="$root_start" conv=notrunc,sparse status=none
to_qcow2 "$raw" "$image"
echo "$key" >"$stamp"
echo "image/cloud/build.sh: built $image ($(du -h "$image" | cut -f1) on disk, $(basename "$kernel")) in $((SECONDS - start)) s"
