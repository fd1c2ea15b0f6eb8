#!/usr/bin/env bash
# Where the bytes of the kvm-launch images go: one row per part, from the images' own layers (podman history),
# in MB (10^6 bytes, as podman reports image sizes). Called by build-image.sh; bench/bench.py reads its output
# (`--json` prints {image: {part: bytes, "total": bytes}}).
#
# Usage: docker/image-size.sh [--json] [IMAGE [LIBVIRT_IMAGE]]
#        (defaults: localhost/kvm-launch:latest, localhost/kvm-launch:libvirt)
set -euo pipefail
# shellcheck source=docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
json=no
[[ ${1:-} == --json ]] && { json=yes; shift; }
image=${1:-localhost/kvm-launch:latest}
libvirt=${2:-localhost/kvm-launch:libvirt}
work=$(mktemp -d /tmp/kvm-launch-image-size.XXXXXX)
trap 'rm -rf "$work"' EXIT
for tag in "$image" "$libvirt"; do
	if podman image exists "$tag"; then
		podman history --no-trunc --format json "$tag" >"$work/$(echo "$tag" | tr '/:' '__').json"
		podman image inspect --format '{{.Size}}' "$tag" >"$work/$(echo "$tag" | tr '/:' '__').total"
	fi
done
python3 - "$work" "$json" "$image" "$libvirt" <<'PY'
import json, os, re, sys
work, as_json, images = sys.argv[1], sys.argv[2] == "yes", sys.argv[3:]
PARTS = ["system: loader, shared libraries of QEMU and the binaries, bash, busybox, CA bundle",
         "QEMU (x86_64): emulator, modules, firmware, keymaps, helpers", "kvm-launch-config", "kvm-launch",
         "libvirt: libvirtd, virtlogd, virsh and the libraries the default image lacks", "other (checks, links)"]
# The Dockerfile's layers FROM scratch: the folders slim-root.sh made, copied in this order (COPY dir:… in /):
# the system, QEMU, then (libvirt variant) libvirt; then the binaries (COPY file:… in /usr/local/bin/NAME).
FOLDERS = [PARTS[0], PARTS[1], PARTS[4]]
def part(created, folders_seen):
    if re.search(r" in /usr/local/bin/kvm-launch-config\s*$", created): return PARTS[2]
    if re.search(r" in /usr/local/bin/kvm-launch(-libvirt)?\s*$", created): return PARTS[3]
    if re.search(r"#\(nop\) COPY dir:\S+ in /\s*$", created) and folders_seen < len(FOLDERS): return FOLDERS[folders_seen]
    return PARTS[5]
result = {}
for tag in images:
    name = os.path.join(work, tag.replace("/", "_").replace(":", "_"))
    if not os.path.exists(name + ".json"):
        continue
    sizes, folders_seen = {}, 0
    for layer in reversed(json.load(open(name + ".json"))):  # oldest first
        created = layer.get("CreatedBy") or layer.get("createdBy") or ""
        what = part(created, folders_seen)
        folders_seen += what in FOLDERS
        sizes[what] = sizes.get(what, 0) + int(layer.get("size") or 0)
    sizes["total"] = int(open(name + ".total").read())
    result[tag] = sizes
if as_json:
    print(json.dumps(result, indent=1))
    sys.exit(0)
mb = lambda value: "–" if value is None else f"{value / 1e6:.1f}"
print("| part | " + " | ".join(result) + " |")
print("| --- |" + " ---: |" * len(result))
for what in PARTS:
    label = "kvm-launch (the libvirt variant's is the build with the libvirt backend)" if what == "kvm-launch" else what
    print(f"| {label} | " + " | ".join(mb(sizes.get(what)) for sizes in result.values()) + " |")
print("| **total** | " + " | ".join(f"**{mb(sizes['total'])}**" for sizes in result.values()) + " |")
PY
