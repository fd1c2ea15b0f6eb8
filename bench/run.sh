#!/usr/bin/env bash
# make bench: compiles the QEMU stand-in (bench/stub/qemu-stub.c) and runs every benchmark
# (bench/bench.py, arguments passed through); the table is printed and kept in bench/results/.
# Expects the release build (.build/release) and the test guest (image/out) that `make bench` makes.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "bench: run as root (it makes network namespaces, macvtaps and taps)" >&2; exit 1; }
cc=$(command -v clang || command -v cc || true)
[[ -n $cc ]] || { echo "bench: no C compiler (the Swift toolchain's clang) on PATH for bench/stub/qemu-stub.c" >&2; exit 1; }
mkdir -p bench/results/bin
"$cc" -O2 -Wall -o bench/results/bin/qemu-stub bench/stub/qemu-stub.c
exec python3 bench/bench.py "$@"
