#!/usr/bin/env bash
# Build the nova-compute host image: the Debian 12 cloud guest of image/cloud/build.sh (its code, its cache)
# plus packages.txt (nova-compute-kvm, neutron-openvswitch-agent, openvswitch-switch) and rootfs/ (services
# gated on the configuration cloud-init writes from the NoCloud seed). See image/compute/README.md.
#
# Usage: image/compute/build.sh [OUTDIR]      writes OUTDIR/compute-node.qcow2 (default OUTDIR: image/out)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
IMAGE_NAME=compute-node exec "$repo/image/cloud/build.sh" "${1:-$repo/image/out}" "$here/packages.txt" "$here/rootfs"
