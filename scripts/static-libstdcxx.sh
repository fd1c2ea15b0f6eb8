#!/usr/bin/env bash
# Makes .build/static-libstdc++/, a folder with nothing but a link to the toolchain's libstdc++.a, before a release build
# of kvm-launch (make image, make bench). Package.swift puts that folder on kvm-launch's release link line ahead of the
# compiler's own (which has libstdc++.so too), so the C++ runtime that the static Swift runtime needs is linked into the
# executable instead of being loaded and relocated at every start (README, issue 15's start-up). Without the folder
# the link still works, with the shared libstdc++.
#
# Usage: scripts/static-libstdcxx.sh        env: CLANG (default: the clang next to swift, else clang on PATH)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${CLANG:-} ]]; then
	swift=$(command -v swift || true)
	CLANG=${swift:+$(dirname "$swift")/clang}
	[[ -n $CLANG && -x $CLANG ]] || CLANG=clang
fi
archive=$("$CLANG" -print-file-name=libstdc++.a)
if [[ $archive != /* || ! -f $archive ]]; then
	echo "static-libstdcxx: $CLANG finds no libstdc++.a (Debian: libstdc++-12-dev)" >&2
	exit 1
fi
mkdir -p "$repo/.build/static-libstdc++"
ln -sfn "$archive" "$repo/.build/static-libstdc++/libstdc++.a"
