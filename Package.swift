// swift-tools-version: 6.0
//
// kvm-launch: turn a privileged container into a QEMU/KVM virtual machine that
// takes over the container's network identity.
//
// Targets follow the launch pipeline, one concern each (see README.md):
//   LaunchConfiguration  environment (and etcd) -> validated LaunchConfiguration
//   Netlink (CNetlink)   thin libnl-3 boundary: dump and change links, addresses, routes
//   NetAttach            Inventory -> AttachPlan (pure) -> applied with an undo journal
//   DHCPServer           DHCPv4 packets (pure) and the per-interface responder
//   DNSRelay             the VM's DNS queries relayed to the container's loopback resolvers
//   IPv6Server           Router Advertisements + DHCPv6 (pure logic) and the per-interface responder
//   QEMU                 plan -> QEMU argument array (pure), image probing, acceleration, QMP
//   Supervisor           PID 1 duties: child process, signals, reaping, console
//   ConfigAgent          etcd-backed key=value configuration: load, env, render, watch
//   KVMLauncher          the `kvm-launch` executable wiring the steps together
//   KVMLaunchConfig      the `kvm-launch-config` executable (`kvm-launch config …` runs it)
//   ContainerInstance    this container's own run directory and QMP socket name (shared /run safe)
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

/// `kvm-launch`'s release link (issue 15's start-up, README): one static position-independent executable
/// (`-static-pie`: still randomised by ASLR), so no dynamic loader maps and relocates libstdc++, libnl, libyaml and
/// glibc at every start, and the unwinder that dispatch_main's pthread_exit runs finds frames through the
/// executable's own `PT_GNU_EH_FRAME` table. ld.bfd (binutils) links it (gold cannot make a static PIE).
/// Such a binary must carry no run path: build it with `--disable-local-rpath` (make image, make bench do), or glibc
/// stops it at start. Debug builds (the tests) link as before.
let launcherStartupLinking: [LinkerSetting] = [
    .unsafeFlags(["-static-executable", "-use-ld=bfd", "-Xclang-linker", "-static-pie"], .when(configuration: .release)),
]

let package = Package(
    name: "kvm-launch",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kvm-launch", targets: ["KVMLaunchMain"]),
        // The config agent on its own, so the launcher never loads swift-nio or BoringSSL:
        // `kvm-launch config …` execs it (it ships next to kvm-launch).
        .executable(name: "kvm-launch-config", targets: ["KVMLaunchConfig"]),
        // The full launcher with VM_BACKEND=libvirt (links libvirt.so.0): only in the libvirt image variant;
        // `kvm-launch` execs it when VM_BACKEND=libvirt, so the default launcher never links libvirt.
        .executable(name: "kvm-launch-libvirt", targets: ["KVMLaunchLibvirt"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.65.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.27.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        .target(name: "NetworkTypes", dependencies: [.product(name: "SystemPackage", package: "swift-system")],
                exclude: ["README.md"], swiftSettings: strict),
        .systemLibrary(
            name: "CNetlink",
            pkgConfig: "libnl-route-3.0",
            providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]
        ),
        .target(
            name: "Netlink",
            dependencies: [
                "NetworkTypes",
                "CNetlink",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        .target(
            name: "LaunchConfiguration",
            dependencies: ["NetworkTypes"],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        .target(
            name: "NetAttach",
            dependencies: [
                "NetworkTypes",
                "Netlink",
                "LaunchConfiguration",
                "DHCPServer",
                "DNSRelay",
                "IPv6Server",
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        .target(
            name: "DHCPServer",
            dependencies: [
                "NetworkTypes",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        .target(
            name: "IPv6Server",
            dependencies: [
                "NetworkTypes",
                .product(name: "SystemPackage", package: "swift-system"),
                "DHCPServer",
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        .target(
            name: "QEMU",
            dependencies: [
                "NetworkTypes",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        .target(name: "CSupervisorShims"),
        .target(
            name: "Supervisor",
            dependencies: [
                "QEMU",
                "NetworkTypes",
                "CSupervisorShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        .target(
            name: "ConfigAgent",
            dependencies: [
                "NetworkTypes",
                "Supervisor",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // The launcher itself, as a library: `kvm-launch` (KVMLaunchMain) and `kvm-launch-libvirt`
        // (KVMLaunchLibvirt, which adds the libvirt backend) are its two entry points.
        .target(
            name: "KVMLauncher",
            dependencies: [
                "NetworkTypes",
                "LaunchConfiguration",
                "NetAttach",
                "DHCPServer",
                "DNSRelay",
                "QEMU",
                "Supervisor",
                "ContainerInstance",
                "CloudInitSeed",
                "CSupervisorShims",
                "IPv6Server",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
                "LauncherExecutor",
            ],
            swiftSettings: strict
        ),
        // `kvm-launch-config`: the `kvm-launch config` command as its own executable.
        .executableTarget(
            name: "KVMLaunchConfig",
            dependencies: [
                "ConfigAgent",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // VM_BACKEND=libvirt: libvirt's C API (Debian libvirt-dev), a thin Swift layer over it, and the
        // backend (private libvirtd, domain XML from the plan, console, stop). See Sources/Libvirt*/README.md.
        .systemLibrary(name: "CLibvirt", pkgConfig: "libvirt", providers: [.apt(["libvirt-dev"])]),
        .target(name: "CLibvirtShims"),
        .target(name: "Libvirt", dependencies: ["CLibvirt", "NetworkTypes"], exclude: ["README.md"], swiftSettings: strict),
        .target(
            name: "LibvirtBackend",
            dependencies: [
                "Libvirt", "CLibvirtShims", "QEMU", "Supervisor", "NetworkTypes",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // The one test toolkit every test target uses: process runner, namespaces, fixtures, temp dirs, logs.
        .target(name: "TestSupport", dependencies: ["Supervisor", .product(name: "Logging", package: "swift-log")],
                path: "Tests/TestSupport", exclude: ["README.md"], swiftSettings: strict),
        .testTarget(name: "NetworkTypesTests", dependencies: ["NetworkTypes", "TestSupport", .product(name: "SystemPackage", package: "swift-system")],
                    swiftSettings: strict),
        .testTarget(name: "LaunchConfigurationTests", dependencies: ["LaunchConfiguration", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "NetAttachTests", dependencies: [
            "NetAttach", "Netlink", "LaunchConfiguration", "IPv6Server", "InMemoryNetlink", "TestSupport",
            .product(name: "PropertyBased", package: "swift-property-based"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        .testTarget(
            name: "DHCPServerTests",
            dependencies: [
                "DHCPServer",
                "IPv6Server",
                "TestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "QEMUTests", dependencies: ["QEMU", "NetworkTypes", "Supervisor", "TestSupport",
                                              .product(name: "SystemPackage", package: "swift-system")], swiftSettings: strict),
        // A tiny program the Supervisor tests run as a separate process, so real
        // signals and child reaping never touch the test runner itself.
        .executableTarget(
            name: "SupervisorTestHelper",
            dependencies: ["Supervisor", "QEMU"],
            path: "Tests/SupervisorTestHelper",
            swiftSettings: strict
        ),
        .testTarget(
            name: "SupervisorTests",
            dependencies: ["Supervisor", "QEMU", "NetworkTypes", "SupervisorTestHelper", "TestSupport", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ConfigAgentTests",
            dependencies: [
                "ConfigAgent",
                "TestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
        // Not part of `swift test`: `swift run -c release ConfigAgentBench` (see bench/ConfigAgentBench).
        .executableTarget(
            name: "ConfigAgentBench",
            dependencies: ["ConfigAgent"],
            path: "bench/ConfigAgentBench",
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // Not part of `swift test`: `swift run -c release DHCPBench` (see bench/README.md).
        .executableTarget(
            name: "DHCPBench",
            dependencies: ["DHCPServer", "NetworkTypes", "DNSRelay", .product(name: "Logging", package: "swift-log")],
            path: "bench/DHCPBench",
            swiftSettings: strict
        ),
        // Not part of `swift test`: `swift run -c release IPv6Bench [INTERFACE]` (as root; see bench/IPv6Bench).
        .executableTarget(
            name: "IPv6Bench",
            dependencies: ["IPv6Server", "NetworkTypes", .product(name: "Logging", package: "swift-log")],
            path: "bench/IPv6Bench",
            swiftSettings: strict
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["TestSupport", "ContainerStart"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IPv6ServerTests",
            dependencies: [
                "IPv6Server",
                "DHCPServer",
                "NetworkTypes",
                "TestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["NetAttach", "Netlink", "LaunchConfiguration", "TestSupport", "InMemoryNetlink", "IPv6Server", "NetworkTypes",
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // Unit tests' in-memory network namespace behind Netlink's protocols (never in the product).
        .target(
            name: "InMemoryNetlink",
            dependencies: ["Netlink", "NetworkTypes", .product(name: "SystemPackage", package: "swift-system")],
            path: "Tests/InMemoryNetlink",
            swiftSettings: strict
        ),
        // A tiny program the end-to-end tests start kvm-launch with, the way a container runtime
        // does: PID 1 of a new PID namespace with a fresh /run (see its header).
        .executableTarget(name: "ContainerStart", path: "Tests/ContainerStart", swiftSettings: strict),
        .target(
            name: "CloudInitSeed",
            dependencies: ["NetworkTypes", "CYAML"],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CloudInitSeedTests",
            dependencies: ["CloudInitSeed", "NetworkTypes", "TestSupport", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        .target(
            name: "DNSRelay",
            dependencies: [
                "NetworkTypes",
                .product(name: "SystemPackage", package: "swift-system"),
                "Netlink",
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DNSRelayTests",
            dependencies: [
                "DNSRelay",
                "NetworkTypes",
                "TestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // Not part of `swift test`: `make fuzz` (a million inputs through the DHCPv4 codec, see bench/README.md).
        .executableTarget(
            name: "DHCPFuzz",
            dependencies: ["DHCPServer", "NetworkTypes"],
            path: "bench/DHCPFuzz",
            swiftSettings: strict
        ),
        .testTarget(
            name: "LibvirtTests",
            dependencies: ["LibvirtBackend", "Libvirt", "QEMU", "NetworkTypes", "LaunchConfiguration", "TestSupport"],
            swiftSettings: strict
        ),
        .target(name: "ContainerInstance", dependencies: ["NetworkTypes", .product(name: "SystemPackage", package: "swift-system")], exclude: ["README.md"], swiftSettings: strict),
        .testTarget(name: "ContainerInstanceTests", dependencies: ["ContainerInstance", "QEMU", "TestSupport",
                                                           .product(name: "SystemPackage", package: "swift-system")], swiftSettings: strict),
        // `kvm-launch`: the launcher without libvirt (VM_BACKEND=libvirt execs `kvm-launch-libvirt`).
        .executableTarget(name: "KVMLaunchMain", dependencies: ["KVMLauncher"], swiftSettings: strict,
                         linkerSettings: launcherStartupLinking),
        // `kvm-launch-libvirt`: the launcher with the libvirt backend (the libvirt image variant).
        .executableTarget(
            name: "KVMLaunchLibvirt",
            dependencies: [
                "KVMLauncher", "Libvirt", "LibvirtBackend", "LaunchConfiguration", "NetAttach", "QEMU", "Supervisor",
                "ContainerInstance", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // libyaml (Debian libyaml-dev): CloudInitSeed reads and writes user data with it (Yams, which needs full
        // Foundation, stays in the tests only: the launcher links FoundationEssentials alone).
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        // kvm-launch's own executor (main, global and delayed jobs on the main thread): libdispatch's worker
        // pool, whose monitor timer wakes the process every second, is never started.
        .target(name: "LauncherExecutor", exclude: ["README.md"], swiftSettings: strict),
        .testTarget(name: "LauncherExecutorTests", dependencies: ["LauncherExecutor", "NetworkTypes"], swiftSettings: strict),
    ]
)
