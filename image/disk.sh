# Sourced by image/build.sh and image/cloud/build.sh: the BIOS boot both guests share, an MBR with
# syslinux on a bootable FAT partition that holds the kernel and the initrd.
#
# boot_partition FAT KERNEL INITRD APPEND MKFS_FAT_OPTIONS...: writes the FAT image FAT (kernel as
#   /vmlinuz, initrd as /initrd.img, a syslinux.cfg booting them on the serial console with APPEND, syslinux
#   installed) sized for its payload plus a quarter and 8 MiB; sets fat_start (its first sector on the
#   disk, 2048) and fat_sectors. MKFS_FAT_OPTIONS are mkfs.fat's (label, volume id).
# bootable_disk RAW FAT: puts syslinux's MBR boot code and the FAT image (at fat_start) into the raw disk
#   RAW, whose partition table the caller wrote with sfdisk.
# to_qcow2 RAW IMAGE: converts RAW to qcow2 and moves it to IMAGE in one step.

boot_partition() {
	local fat=$1 kernel=$2 initrd=$3 append=$4
	shift 4
	local payload_kib=$(( ($(stat -c %s "$kernel") + $(stat -c %s "$initrd")) / 1024 ))
	fat_start=2048
	fat_sectors=$(( (payload_kib * 5 / 4 / 1024 + 8) * 2048 ))
	truncate -s $(( fat_sectors * 512 )) "$fat"
	mkfs.fat -F 16 -h "$fat_start" "$@" "$fat" >/dev/null
	printf 'SERIAL 0 115200\nDEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n\tKERNEL /vmlinuz\n\tINITRD /initrd.img\n\tAPPEND %s\n' \
		"$append" >"$fat.syslinux.cfg"
	mcopy -i "$fat" "$kernel" ::/vmlinuz
	mcopy -i "$fat" "$initrd" ::/initrd.img
	mcopy -i "$fat" "$fat.syslinux.cfg" ::/syslinux.cfg
	syslinux --install "$fat"
}

bootable_disk() {
	local raw=$1 fat=$2
	dd if=/usr/lib/syslinux/mbr/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none
	dd if="$fat" of="$raw" bs=512 seek="$fat_start" conv=notrunc status=none
}

to_qcow2() {
	local raw=$1 image=$2
	qemu-img convert -q -f raw -O qcow2 "$raw" "$raw.qcow2"
	mv -f "$raw.qcow2" "$image"
}
