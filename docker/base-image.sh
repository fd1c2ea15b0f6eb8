#!/usr/bin/env bash
# Make the base image docker.io/library/debian:bookworm-slim locally with debootstrap, for machines where no
# container registry is reachable (only the Debian mirror is). Cached: does nothing when podman already has
# the image (pulled or made earlier). FORCE=1 makes it again.
#
# Usage: docker/base-image.sh            env: DEBIAN_MIRROR (default http://deb.debian.org/debian)
#
# Like Debian's own slim image: minbase variant, documentation, man pages and translations excluded from
# every later dpkg install too (a dpkg.cfg.d drop-in), apt lists and caches removed.
set -euo pipefail
image=docker.io/library/debian:bookworm-slim
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# shellcheck source=docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_podman

if [[ -z ${FORCE:-} ]] && podman image exists "$image"; then
	echo "base-image: $image is present"
	exit 0
fi
command -v debootstrap >/dev/null || { echo "base-image: debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }

root=$(mktemp -d /tmp/kvm-launch-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
start=$SECONDS
echo "base-image: debootstrap --variant=minbase bookworm from $mirror (a few minutes)"
if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1; then
	tail -n 20 "$root.log" >&2
	rm -f "$root.log"
	echo "base-image: debootstrap failed (log above): is $mirror reachable? set DEBIAN_MIRROR to another mirror" >&2
	exit 1
fi
rm -f "$root.log"

cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
# No documentation, man pages or translations in this image (like Debian's -slim images).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
cat >"$root/etc/apt/apt.conf.d/slim" <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
CFG
cat >"$root/etc/apt/sources.list" <<LIST
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
LIST
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
rm -rf "$root"/usr/share/{man,info,locale,lintian}/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
	"$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log "$root"/tmp/* "$root"/root/.bash_history
: >"$root/etc/hostname"
: >"$root/etc/resolv.conf"

tar --numeric-owner -C "$root" -c . |
	podman import --change 'CMD ["bash"]' --change 'LABEL org.opencontainers.image.description="debian bookworm minbase, made locally by kvm-launch docker/base-image.sh"' \
		--quiet --message "debootstrap --variant=minbase bookworm" - "$image" >/dev/null
echo "base-image: $image made in $((SECONDS - start)) s ($(podman image inspect --format '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
