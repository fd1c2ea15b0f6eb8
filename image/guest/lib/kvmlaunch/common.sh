# Shared helpers for the test guest's scripts (sourced, busybox sh).

KVMLAUNCH_RUN=/run/kvmlaunch
MARKER_MAGIC=KVMLAUNCH-MARKER-AREA-V1

# say LINE: print one line on the serial console (the tty turns \n into \r\n), starting on a fresh line so a
# pending shell prompt or partial kernel message cannot glue itself to the front of a machine-readable line.
say() {
	printf '\n%s\n' "$*" >/dev/console
}

# opt NAME: print the value of knob NAME and succeed, or fail when it is unset. Sources, first match wins:
#   1. /run/kvmlaunch/opt/NAME         (set at runtime, e.g. by `acpi-ignore on`)
#   2. QEMU -fw_cfg name=opt/kvmlaunch/NAME,string=VALUE
#   3. kernel command line kvmlaunch.NAME=VALUE
opt() {
	if [ -r "$KVMLAUNCH_RUN/opt/$1" ]; then
		cat "$KVMLAUNCH_RUN/opt/$1"
		return 0
	fi
	if [ -r "/sys/firmware/qemu_fw_cfg/by_name/opt/kvmlaunch/$1/raw" ]; then
		cat "/sys/firmware/qemu_fw_cfg/by_name/opt/kvmlaunch/$1/raw"
		return 0
	fi
	for word in $(cat /proc/cmdline); do
		case "$word" in
		"kvmlaunch.$1="*)
			echo "${word#*=}"
			return 0
			;;
		esac
	done
	return 1
}

# opt_on NAME: succeed when knob NAME is set to 1/yes/true/on.
opt_on() {
	case "$(opt "$1" | tr -d '\r\n ' | tr 'A-Z' 'a-z')" in
	1 | yes | true | on) return 0 ;;
	*) return 1 ;;
	esac
}

# marker_device: print the block device of the marker area (the partition whose first sector starts with
# the magic written by build.sh) and succeed, or fail when there is none.
marker_device() {
	for part in /sys/class/block/*; do
		[ -e "$part/partition" ] || continue
		dev="/dev/${part##*/}"
		[ -b "$dev" ] || continue
		head=$(dd if="$dev" bs=512 count=1 2>/dev/null | head -c ${#MARKER_MAGIC})
		if [ "$head" = "$MARKER_MAGIC" ]; then
			echo "$dev"
			return 0
		fi
	done
	return 1
}

# marker_text DEV: print the marker stored in sector 1 of DEV and succeed, or fail when none is stored.
marker_text() {
	record=$(dd if="$1" bs=512 skip=1 count=1 2>/dev/null | tr -d '\000' | head -n 1)
	case "$record" in
	"MARKER "*)
		echo "${record#MARKER }"
		return 0
		;;
	esac
	return 1
}
