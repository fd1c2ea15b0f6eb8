#!/usr/bin/env bash
# make image: compile kvm-launch (release, static Swift standard library) on the host, stage it in
# docker/out/, make sure the base image exists (docker/base-image.sh) and build docker/Dockerfile with podman.
#
# Usage: docker/build-image.sh        env: IMAGE (default localhost/kvm-launch:latest), SWIFT (default swift)
set -euo pipefail
# shellcheck source=docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_podman
IMAGE=${IMAGE:-localhost/kvm-launch:latest}
SWIFT=${SWIFT:-swift}
mkdir -p "$here/out"

# 1. The binary. A static Swift standard library: the image needs no Swift runtime, only glibc and libnl.
start=$SECONDS
(cd "$repo" && "$SWIFT" build -c release --static-swift-stdlib --product kvm-launch)
bin=$(cd "$repo" && "$SWIFT" build -c release --static-swift-stdlib --show-bin-path)/kvm-launch
strip -o "$here/out/kvm-launch.new" "$bin"
if cmp -s "$here/out/kvm-launch.new" "$here/out/kvm-launch"; then
	rm "$here/out/kvm-launch.new"
else
	mv "$here/out/kvm-launch.new" "$here/out/kvm-launch"
fi
echo "build-image: kvm-launch $("$here/out/kvm-launch" --version), $(du -m "$here/out/kvm-launch" | cut -f1) MB stripped, built in $((SECONDS - start)) s"
echo "build-image: shared libraries it needs (their packages are in docker/packages-runtime.txt):"
ldd "$here/out/kvm-launch" | awk '{ print "  " $1 }'

# 2. The base image, made locally with debootstrap when podman does not have it.
"$here/base-image.sh"

# 3. The image. --format docker: the OCI format has no HEALTHCHECK. --pull=never: no registry needed.
start=$SECONDS
revision=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
podman build --quiet --format docker --pull=never "${KVM_LAUNCH_ULIMITS[@]}" \
	--build-arg VERSION="$("$here/out/kvm-launch" --version)" --build-arg REVISION="$revision" \
	-t "$IMAGE" -f "$here/Dockerfile" "$here" >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }')
echo "build-image: $IMAGE built in $((SECONDS - start)) s, $size"
