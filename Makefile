# kvm-launch — see README.md. `make demo` runs the main job, `make test` the test suite.
SHELL := /bin/bash
SWIFT ?= swift
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: all deps build test demo clean

all: build

deps:
	scripts/deps.sh scripts/packages-test.txt

build: deps
	$(SWIFT) build

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

clean:
	rm -rf .build
