import Foundation
import Testing
import TestSupport

/// Issue 10 items 10 and 12 through the real binary in a simulated container: every bad input makes
/// `--dry-run` and a real launch exit non-zero with exactly one line on stderr, and the namespace (links,
/// addresses, routes) and the run directory are exactly as before.
@Suite(.serialized, .enabled(if: isRoot, needsRootReason))
struct BadInputIntegrationTests {
    static let oneInterface = [ContainerFixture.Interface(name: "eth0", addresses: ["10.88.0.2/24"], peerAddress: "10.88.0.1/24", defaultRoute: true)]

    /// Runs `--dry-run`, then a launch, with `extra` on top of a valid environment; checks both refuse in
    /// one line containing `expected` and change nothing.
    func expectRefusedBeforeAnyChange(_ fixture: ContainerFixture, _ extra: [String: String], expected: String,
                                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        let runDirectory = fixture.directory.appendingPathComponent("run").path
        let image = fixture.directory.appendingPathComponent("blank.qcow2").path
        if !FileManager.default.fileExists(atPath: image) { try run(["qemu-img", "create", "-q", "-f", "qcow2", image, "16M"]) }
        let environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "VM_ACCEL": "tcg", "VM_IMAGE": image, "AUTO_ATTACH": "yes",
                           "KVM_LAUNCH_RUN_DIR": runDirectory].merging(extra) { $1 }
        let before = try fixture.state()
        for arguments in [["--dry-run"], []] {
            let result = try fixture.container.exec([kvmLaunchBinary] + arguments, environment: environment, check: false)
            let mode = arguments.isEmpty ? "launch" : "--dry-run"
            #expect(result.status != 0, "\(mode) fails", sourceLocation: sourceLocation)
            let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
            #expect(lines.count == 1 && result.stderr.hasSuffix("\n"), "\(mode): exactly one line on stderr: \(result.stderr)", sourceLocation: sourceLocation)
            #expect(lines.first?.hasPrefix("Error: ") == true, "\(mode): \(result.stderr)", sourceLocation: sourceLocation)
            #expect(result.stderr.contains(expected), "\(mode): \(result.stderr)", sourceLocation: sourceLocation)
            #expect(!result.stderr.contains("/usr/sbin:/usr/bin"), "\(mode): no PATH dump: \(result.stderr)", sourceLocation: sourceLocation)
            #expect(!FileManager.default.fileExists(atPath: runDirectory), "\(mode): no run directory was made", sourceLocation: sourceLocation)
            let after = try fixture.state()
            #expect(after == before, "\(mode) changed the namespace: only before \(Set(before.split(separator: "\n")).subtracting(after.split(separator: "\n"))), only after \(Set(after.split(separator: "\n")).subtracting(before.split(separator: "\n")))", sourceLocation: sourceLocation)
        }
    }

    @Test func settingsRefusedBeforeAnyChange() throws {
        let fixture = try ContainerFixture(Self.oneInterface)
        defer { fixture.destroy() }
        let cases: [([String: String], String)] = [
            (["VM_MEMORY": "99999999999T"], "VM_MEMORY"),
            (["VM_MEMORY": "\(Self.hostMemoryMiB() + 1024)"], "VM_MEMORY asks for"),
            (["VM_HOSTNAME": "vm\nInjected: line"], #"VM_HOSTNAME="vm\nInjected: line""#),
            (["VM_HOSTNAME": "$(reboot)"], "VM_HOSTNAME"),
            (["VM_HOSTNAME": String(repeating: "h", count: 64)], "VM_HOSTNAME"),
            (["DNS_SERVERS": (1...64).map { "10.1.\($0 / 200).\($0 % 200 + 1)" }.joined(separator: ",")], "more than one DHCP answer carries"),
            (["DNS_SERVERS": "0.0.0.0"], "means \"no address\""),
            (["DNS_SERVERS": ","], "names no server"),
            (["KVM_LAUNCH_RUN_DIR": "/" + String(repeating: "r", count: 99)], "unix socket path"),
            (["LAUNCHER": "/nonexistent/qemu-system-x86_64"], "does not exist (no such file)"),
            (["VM_IMAGE": "/dev/zero"], "is a character device"),
            (["VM_ACCEL": "tcg\u{1b}[2J"], #"VM_ACCEL="tcg\u{1b}[2J""#),
            (["VM_NET_QUEUES": "17"], "VM_NET_QUEUES=\"17\" is not a number of queue pairs per NIC from 1 to 16"),
        ]
        for (extra, expected) in cases {
            try expectRefusedBeforeAnyChange(fixture, extra, expected: expected)
        }
    }

    /// `kvm-launch` with no flag of its own launches without ArgumentParser; with one (`--json`, which
    /// alone still launches) it parses first: both fail with the very same line and status, with and
    /// without QEMU arguments after them, and both launch alike (no plan, no list on stdout; exit 0).
    @Test func theEntrypointWithoutParsingActsAsTheParsedLaunch() throws {
        let fixture = try ContainerFixture(Self.oneInterface)
        defer { fixture.destroy() }
        let environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "VM_ACCEL": "tcg", "AUTO_ATTACH": "yes", "VM_MEMORY": "99999999999T",
                           "KVM_LAUNCH_RUN_DIR": fixture.directory.appendingPathComponent("run").path]
        for qemuArguments in [[], ["-name", "entrypoint-test"]] {
            let direct = try fixture.container.exec([kvmLaunchBinary] + qemuArguments, environment: environment, check: false)
            let parsed = try fixture.container.exec([kvmLaunchBinary, "--json"] + qemuArguments, environment: environment, check: false)
            #expect(direct.status != 0 && direct.stderr.contains("VM_MEMORY"), "\(direct.stderr)")
            #expect(direct.status == parsed.status)
            #expect(direct.stderr == parsed.stderr)
            #expect(direct.stdout == parsed.stdout)
        }
        // A launch that succeeds (/bin/true as QEMU: the guest "powers off" at once) does the same both
        // ways: exit 0, nothing on stdout (neither a plan nor an interface list), the namespace restored.
        let image = fixture.directory.appendingPathComponent("blank.qcow2").path
        try run(["qemu-img", "create", "-q", "-f", "qcow2", image, "16M"])
        var valid = environment
        valid["VM_MEMORY"] = nil
        valid["VM_IMAGE"] = image
        valid["LAUNCHER"] = "/bin/true"
        let before = try fixture.state()
        for arguments in [[], ["--json"]] {
            let result = try fixture.container.exec([kvmLaunchBinary] + arguments, environment: valid, check: false)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            #expect(result.stdout.isEmpty, "\(arguments): \(result.stdout)")
            #expect(result.stderr.contains("exiting 0"), "\(arguments): \(result.stderr)")
            #expect(try fixture.state() == before)
        }
    }

    @Test func aRelativeRunDirectoryIsRefusedAndNotCreatedAnywhere() throws {
        let fixture = try ContainerFixture(Self.oneInterface)
        defer { fixture.destroy() }
        let name = "kl-images-relrun-\(UInt32.random(in: 0...UInt32.max))"
        try expectRefusedBeforeAnyChange(fixture, ["KVM_LAUNCH_RUN_DIR": name], expected: "must be an absolute path")
        #expect(!FileManager.default.fileExists(atPath: "/\(name)"))
        #expect(!FileManager.default.fileExists(atPath: FileManager.default.currentDirectoryPath + "/\(name)"))
    }

    @Test func disksRefusedBeforeAnyChange() throws {
        let fixture = try ContainerFixture(Self.oneInterface)
        defer { fixture.destroy() }
        let folder = fixture.directory.appendingPathComponent("image").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let fifo = folder + "/fifo.qcow2"
        #expect(mkfifo(fifo, 0o600) == 0)
        let random = folder + "/random.qcow2"
        try Data((0..<(1 << 20)).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: random))
        let hostBacking = folder + "/host.qcow2"
        try run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", hostBacking, "16M"])
        let outsideData = folder + "/data.qcow2"
        try run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file=\(fixture.directory.path)/outside.raw", outsideData, "16M"])
        // A raw disk whose guest wrote a qcow2 header (naming a host file) into its first sector.
        let raw = folder + "/image"
        try run(["qemu-img", "create", "-q", "-f", "raw", raw, "1M"])
        try run(["dd", "if=\(hostBacking)", "of=\(raw)", "bs=4096", "count=1", "conv=notrunc", "status=none"])

        try expectRefusedBeforeAnyChange(fixture, ["VM_IMAGE": fifo], expected: "is a FIFO (named pipe)")
        try expectRefusedBeforeAnyChange(fixture, ["VM_IMAGE": random], expected: "is named .qcow2 but is not qcow2")
        try expectRefusedBeforeAnyChange(fixture, ["VM_IMAGE": hostBacking], expected: "names the backing file '/etc/passwd'")
        try expectRefusedBeforeAnyChange(fixture, ["VM_IMAGE": outsideData], expected: "names the data file")
        try expectRefusedBeforeAnyChange(fixture, ["VM_IMAGE": raw], expected: "has a qcow2 header but its name states no format")
        try expectRefusedBeforeAnyChange(fixture, ["VM_IMAGE": raw, "VM_IMAGE_FORMAT": "qcow2"], expected: "names the backing file '/etc/passwd'")
    }

    @Test func aNetworkOrBroadcastAddressIsNoHostAddress() throws {
        for address in ["10.88.0.0/24", "10.88.0.255/24"] {
            let fixture = try ContainerFixture([.init(name: "eth0", addresses: [address], peerAddress: "10.88.0.1/24", defaultRoute: true)])
            defer { fixture.destroy() }
            try expectRefusedBeforeAnyChange(fixture, [:], expected: "is the \(address.hasSuffix(".0/24") ? "network" : "broadcast") address of its subnet")
        }
    }

    @Test func moreRoutesThanDHCPCarriesAreRefused() throws {
        let fixture = try ContainerFixture(Self.oneInterface)
        defer { fixture.destroy() }
        for index in 0..<61 { try fixture.container.ip("route add 10.200.\(index).0/24 via 10.88.0.1 dev eth0") }
        try expectRefusedBeforeAnyChange(fixture, [:], expected: "static routes (option 121)")
    }

    @Test func moreInterfacesThanTheMachineHasSlotsAreRefused() throws {
        let interfaces = (0..<65).map { ContainerFixture.Interface(name: "eth\($0)", addresses: ["10.90.\($0).2/24"]) }
        let fixture = try ContainerFixture(interfaces)
        defer { fixture.destroy() }
        try expectRefusedBeforeAnyChange(fixture, [:], expected: "65 interfaces would need 65 NICs but kvm-launch gives a VM at most 64")
    }

    /// MemTotal + SwapTotal of this host, in MiB, read here.
    static func hostMemoryMiB() -> Int {
        let text = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.hasPrefix("MemTotal:") || $0.hasPrefix("SwapTotal:") }
            .compactMap { $0.split(separator: " ").dropFirst().first.flatMap { Int($0) } }.reduce(0, +) / 1024
    }
}
