#!/usr/bin/env bash
# make image: compile kvm-launch, kvm-launch-config and kvm-launch-libvirt (release, static Swift standard library) on
# the host, stage them stripped in docker/out/, make sure the base image exists (docker/base-image.sh) and build both
# variants of docker/Dockerfile with podman: the default (QEMU only) and the libvirt one.
#
# Usage: docker/build-image.sh        env: IMAGE (default localhost/kvm-launch:latest), LIBVIRT_IMAGE (default
#                                          localhost/kvm-launch:libvirt), SWIFT (default swift)
set -euo pipefail
# shellcheck source=docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_podman
IMAGE=${IMAGE:-localhost/kvm-launch:latest}
LIBVIRT_IMAGE=${LIBVIRT_IMAGE:-localhost/kvm-launch:libvirt}
SWIFT=${SWIFT:-swift}
mkdir -p "$here/out"

# 1. The binaries: the launcher, the config agent (`kvm-launch config …` runs kvm-launch-config from the same
# directory) and the launcher with the libvirt backend (the libvirt variant's kvm-launch). A static Swift standard
# library: the image needs no Swift runtime, only glibc and libnl (and libvirt for the last). Stripped: the symbols
# and debug information are a quarter of a release binary.
# kvm-launch is one static PIE (issue 15's start-up; Package.swift), which must carry no run path: --disable-local-rpath.
start=$SECONDS
for product in kvm-launch kvm-launch-config kvm-launch-libvirt; do
	(cd "$repo" && "$SWIFT" build -c release --static-swift-stdlib --disable-local-rpath --product "$product")
	bin=$(cd "$repo" && "$SWIFT" build -c release --static-swift-stdlib --disable-local-rpath --show-bin-path)/$product
	strip -o "$here/out/$product.new" "$bin"
	if cmp -s "$here/out/$product.new" "$here/out/$product"; then
		rm "$here/out/$product.new"
	else
		mv "$here/out/$product.new" "$here/out/$product"
	fi
	echo "build-image: $product $(du -m "$here/out/$product" | cut -f1) MB stripped"
done
echo "build-image: kvm-launch $("$here/out/kvm-launch" --version), built in $((SECONDS - start)) s"
echo "build-image: shared libraries they need (their packages are in docker/packages-runtime.txt, packages-libvirt.txt):"
ldd "$here/out/kvm-launch" "$here/out/kvm-launch-config" "$here/out/kvm-launch-libvirt" | awk '/:$|statically linked/ { next } { print "  " $1 }' | sort -u

# 2. The base image, made locally with debootstrap when podman does not have it.
"$here/base-image.sh"

# 3. The images. --format docker: the OCI format has no HEALTHCHECK. --pull=never: no registry needed.
revision=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
for variant in qemu libvirt; do
	start=$SECONDS
	tag=$IMAGE
	[[ $variant == libvirt ]] && tag=$LIBVIRT_IMAGE
	podman build --quiet --format docker --pull=never "${KVM_LAUNCH_ULIMITS[@]}" --target "$variant" \
		--build-arg VERSION="$("$here/out/kvm-launch" --version)" --build-arg REVISION="$revision" \
		-t "$tag" -f "$here/Dockerfile" "$here" >/dev/null
	size=$(podman image inspect --format '{{.Size}}' "$tag" | awk '{ printf "%.0f MB", $1 / 1e6 }')
	echo "build-image: $tag ($variant) built in $((SECONDS - start)) s, $size"
done
"$here/image-size.sh" "$IMAGE" "$LIBVIRT_IMAGE"
