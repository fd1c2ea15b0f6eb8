# kvm-launch — see README.md. `make demo` runs the main job, `make test` the test suite.
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SWIFT ?= swift

.PHONY: all deps build guest test test-swift demo bench fuzz clean image test-container compute-image

all: build

deps:
	@scripts/deps.sh scripts/packages-test.txt image/packages.txt

build: deps
	$(SWIFT) build

# The test guest: a Debian kernel and a busybox initramfs on a disk that boots by itself (cached).
guest: deps
	image/build.sh

# A stock Debian 12 cloud guest (debootstrap, cloud-init, OpenSSH; cached) for the cloud-init tests.
cloud-guest: deps
	image/cloud/build.sh

# The nova-compute host image (image/compute/README.md): the cloud guest plus nova-compute-kvm,
# neutron-openvswitch-agent and Open vSwitch, configured from etcd through the NoCloud seed (cached).
compute-image: deps
	image/compute/build.sh

# Everything: the guest's own smoke test, the Swift suites, and the container image run with podman.
test: test-swift test-container

# Unit tests need nothing; integration and end-to-end tests make network namespaces and run QEMU,
# so they need root (CI is root). The guest image is built first. Suites run one after another:
# booting guests under TCG on 2 cores next to timing-sensitive supervisor tests made both flaky.
test-swift: deps guest cloud-guest compute-image
	image/smoke.sh
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel

# The main job: a simulated container boots the test guest on the container's IP and MAC.
demo: deps guest
	$(SWIFT) build
	scripts/demo.sh

# Benchmarks (bench/README.md): the release build the image ships (static Swift standard library; kvm-launch a static
# PIE, which must carry no run path: --disable-local-rpath), then every figure with its baseline, as a table.
# BENCH_ARGS are passed to bench/bench.py (e.g. --only setup,dhcp or --quick). The images are built first: their
# sizes are figures too (both variants).
bench: deps guest image
	@scripts/deps.sh bench/packages.txt
	for product in kvm-launch kvm-launch-config kvm-launch-libvirt DHCPBench ConfigAgentBench; do \
		$(SWIFT) build -c release --static-swift-stdlib --disable-local-rpath --product $$product || exit 1; done
	bench/run.sh $(BENCH_ARGS)

# A million inputs through the DHCPv4 codec and server path (bench/README.md), outside `make test`'s budget.
# FUZZ_ARGS are passed to DHCPFuzz (e.g. --inputs 5000000 --seed 7).
fuzz: deps
	$(SWIFT) build -c release --product DHCPFuzz
	$(SWIFT) run -c release --skip-build DHCPFuzz $(FUZZ_ARGS)

# The container image (docker/, see README "Docker"): kvm-launch (release, static Swift standard library)
# and QEMU on Debian 12 slim, built with podman; the base image is made with debootstrap when missing.
image: deps
	@scripts/deps.sh docker/packages-host.txt
	docker/build-image.sh

# The image run for real with podman (root): networks, graceful stop, Kubernetes manifests.
test-container: image guest
	docker/test-container.sh

clean:
	rm -rf .build image/out docker/out
