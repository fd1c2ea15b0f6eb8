# kvm-launch — see README.md. `make demo` runs the main job, `make test` the test suite.
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)
SWIFT ?= swift

.PHONY: all deps build test demo clean

all: build

deps:
	@scripts/deps.sh scripts/packages-test.txt

build: deps
	$(SWIFT) build

# Unit tests need nothing; the integration tests make network namespaces and need root (CI is root).
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

clean:
	rm -rf .build
