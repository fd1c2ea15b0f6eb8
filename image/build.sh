#!/usr/bin/env bash
# Build the test guest: a BIOS-bootable qcow2 disk (MBR + syslinux on a FAT partition, Debian's kernel, a
# busybox initramfs) plus a small raw partition holding the disk marker. See image/README.md.
#
# Usage: image/build.sh [OUTDIR]      (default OUTDIR: image/out; writes OUTDIR/test-guest.qcow2)
#
# Cached: the image is rebuilt only when it is missing or when an input changed (these scripts, the guest
# files, the package list, or the Debian versions of the kernel/busybox/iperf3/syslinux/libraries used).
# Set FORCE=1 to rebuild anyway.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
out=${1:-$here/out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
image=$out/test-guest.qcow2
stamp=$out/test-guest.inputs

die() {
	echo "image/build.sh: $*" >&2
	exit 1
}
# shellcheck source=image/disk.sh
source "$here/disk.sh"

"$repo/scripts/deps.sh" "$here/packages.txt"

# The kernel package the linux-image-amd64 meta package currently points at (apt lists may be missing on a
# fresh machine: refresh them once).
kernel_package() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
kpkg=$(kernel_package)
if [[ -z $kpkg ]]; then
	apt-get update -qq
	kpkg=$(kernel_package)
fi
[[ -n $kpkg ]] || die "cannot find the kernel package linux-image-amd64 depends on: check the apt sources"
kver_deb=$(apt-cache show --no-all-versions "$kpkg" | awk '$1 == "Version:" { print $2; exit }')
kver=${kpkg#linux-image-}

# Everything the image is made of; a change to any of it triggers a rebuild.
inputs() {
	echo "kernel $kpkg $kver_deb"
	dpkg-query -W busybox-static iperf3 libiperf0 libc6 libssl3 libsctp1 syslinux syslinux-common
	(cd "$here" && find build.sh disk.sh packages.txt guest -type f -print0 | sort -z | xargs -0 sha256sum)
}
key=$(inputs | sha256sum | cut -d' ' -f1)
if [[ -z ${FORCE:-} && -s $image && -s $stamp && $(cat "$stamp") == "$key" ]]; then
	echo "image/build.sh: $image is up to date"
	exit 0
fi

[[ $(id -u) -eq 0 ]] || die "must run as root (creates /dev/console in the initramfs with mknod)"
start=$SECONDS
work=$(mktemp -d /tmp/kvmlaunch-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

# --- kernel package: downloaded (cached in OUTDIR/cache), unpacked, never installed ---------------------
cache=$out/cache
mkdir -p "$cache"
deb=$(find "$cache" -maxdepth 1 -name "${kpkg}_${kver_deb}_*.deb" | head -n 1)
if [[ -z $deb ]]; then
	echo "image/build.sh: downloading $kpkg $kver_deb"
	rm -f "$cache"/linux-image-*.deb
	# apt drops privileges to _apt for downloads; let it write into the cache directory.
	chmod 0777 "$cache"
	(cd "$cache" && apt-get download -q "$kpkg=$kver_deb" >/dev/null)
	chmod 0755 "$cache"
	deb=$(find "$cache" -maxdepth 1 -name "${kpkg}_*.deb" | head -n 1)
	[[ -n $deb ]] || die "apt-get download $kpkg produced no .deb"
fi
kroot=$work/kernel
mkdir -p "$kroot"
dpkg-deb -x "$deb" "$kroot"
vmlinuz=$kroot/boot/vmlinuz-$kver
[[ -f $vmlinuz ]] || die "$deb has no boot/vmlinuz-$kver"
depmod -b "$kroot" "$kver"

# --- initramfs -------------------------------------------------------------------------------------------
root=$work/initramfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,var,root,lib64,etc/kvmlaunch}
cp -a "$here/guest/." "$root/"

# busybox and a link per applet (the static build needs no libraries).
cp /bin/busybox "$root/bin/busybox"
while read -r applet; do
	applet=${applet#/}
	[[ -e $root/$applet || $applet == bin/busybox ]] && continue
	mkdir -p "$root/$(dirname "$applet")"
	ln -s /bin/busybox "$root/$applet"
done < <(busybox --list-full)
ln -s /bin/busybox "$root/init"

# iperf3 with its shared libraries and the dynamic loader, at the paths the binary expects.
cp /usr/bin/iperf3 "$root/usr/bin/iperf3"
while read -r lib; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done < <(ldd /usr/bin/iperf3 | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
chroot "$root" /usr/bin/iperf3 --version >/dev/null || die "iperf3 does not run inside the initramfs tree"

# Modules the guest needs (virtio PCI/net/blk/scsi, IDE/SATA disks, e1000, power button, evdev, fw_cfg),
# with their dependencies, in load order.
modules=(virtio_pci virtio_net virtio_blk virtio_scsi sd_mod ata_piix ahci e1000 button evdev qemu_fw_cfg)
moddir=$kroot/lib/modules/$kver
: >"$root/etc/kvmlaunch/modules"
for m in "${modules[@]}"; do
	modprobe -d "$kroot" -S "$kver" --show-depends "$m" |
		awk '$1 == "insmod" { print $2 }' || die "module $m is not in $kpkg"
done | awk '!seen[$0]++' | while read -r ko; do
	rel=${ko#"$moddir/"}
	mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
	cp "$ko" "$root/lib/modules/$kver/$rel"
	echo "$rel" >>"$root/etc/kvmlaunch/modules"
done
[[ -s $root/etc/kvmlaunch/modules ]] || die "no modules selected"

mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3
initrd=$work/initrd.img
(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) | zstd -q -19 -T0 >"$initrd"

# --- disk: MBR + bootable FAT partition (syslinux, kernel, initramfs) + marker partition -------------------
fat=$work/fat.img
boot_partition "$fat" "$vmlinuz" "$initrd" "console=ttyS0,115200 quiet" -n KVMLAUNCH -i 4b564d4c
marker_start=$(( fat_start + fat_sectors ))
marker_sectors=2048
disk_sectors=$(( marker_start + marker_sectors ))

raw=$work/disk.raw
truncate -s $(( disk_sectors * 512 )) "$raw"
sfdisk --quiet "$raw" <<EOF
label: dos
label-id: 0x4b564d4c
start=$fat_start, size=$fat_sectors, type=6, bootable
start=$marker_start, size=$marker_sectors, type=da
EOF
bootable_disk "$raw" "$fat"
printf 'KVMLAUNCH-MARKER-AREA-V1\n' | dd of="$raw" bs=512 seek="$marker_start" conv=notrunc,sync status=none
to_qcow2 "$raw" "$image"
echo "$key" >"$stamp"
echo "image/build.sh: built $image ($(du -h --apparent-size "$image" | cut -f1), kernel $kver," \
	"initramfs $((($(stat -c %s "$initrd") + 1023) / 1024)) KiB) in $((SECONDS - start)) s"
