import Foundation
import TestSupport
import Testing
import NetworkTypes
import QEMU

/// Issue 10 item 10: limits QEMU would only hit after the network was taken over are refused by
/// ``QEMUConfiguration/arguments()`` (which the launcher calls before any change), and the limit is
/// QEMU's own: the largest accepted configuration starts in a real QEMU, one more NIC does not.
@Suite struct MachineLimitsTests {
    private func configuration(nics count: Int, vga: Bool = false, directory: TemporaryDirectory) -> QEMUConfiguration {
        let nics = (0..<count).map { index in
            NetworkInterfaceCard(mac: MACAddress("02:00:00:00:\(String(format: "%02x", index / 256)):\(String(format: "%02x", index % 256))")!,
                                 backend: .tapDevice("t\(index)", vhost: false))
        }
        return QEMUConfiguration(accelerator: .tcg, memoryMiB: 64, disk: DiskImage(path: directory.file("d.raw"), format: .raw), nics: nics,
                                 graphics: vga ? .legacyVGA : .none, qmpSocketPath: directory.file("q.sock"), extraArguments: ["-S"])
    }

    /// Runs QEMU with `arguments` (tap NICs replaced by hub ports, which need no privileges: the same
    /// PCI devices) and returns nil once its QMP socket is up (it started), or its stderr when it exited.
    private func start(_ arguments: [String], socket: String) async throws -> String? {
        let arguments = arguments.map { $0.hasPrefix("tap,id=") ? "hubport,id=\($0.dropFirst(7).prefix { $0 != "," }),hubid=0" : $0 }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: qemuBinary)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        // SIGKILL: the test process may have SIGTERM blocked, and QEMU inherits the mask.
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        for _ in 0..<400 where process.isRunning && !FileManager.default.fileExists(atPath: socket) {
            try await Task.sleep(for: .milliseconds(50))
        }
        // QEMU makes its QMP socket before it builds the machine, but answers only once the machine is
        // built: an answer means every device found its slot.
        if FileManager.default.fileExists(atPath: socket), process.isRunning,
           (try? await QMPClient.queryStatus(socketPath: socket, timeout: .seconds(20))) != nil {
            return nil
        }
        for _ in 0..<400 where process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        guard !process.isRunning else { return "QEMU neither answered nor exited" }
        return String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    @Test(arguments: [false, true])
    func asManyNICsAsTheMachineHasSlotsAndNotOneMore(_ vga: Bool) async throws {
        let directory = try TemporaryDirectory()
        try run([qemuImg, "create", "-q", "-f", "raw", directory.file("d.raw"), "1M"])
        let free = try #require(configuration(nics: 0, vga: vga, directory: directory).freePCISlotsForNICs)
        #expect(free == (vga ? 27 : 28))

        let fits = configuration(nics: free, vga: vga, directory: directory)
        #expect(try fits.nicLayout().addresses.allSatisfy { $0 == nil })
        let started = try await start(try fits.arguments(), socket: directory.file("q.sock"))
        #expect(started == nil, "QEMU starts with \(free) NICs: \(started ?? "")")
        try? FileManager.default.removeItem(atPath: directory.file("q.sock"))

        // QEMU agrees that the root bus is full: one more NIC there fails for lack of a PCI slot, which
        // is why the NICs beyond it share slots (NICLayout).
        var unchecked = try fits.arguments()
        let last = free - 1
        unchecked += ["-netdev", "tap,id=net\(free),ifname=t\(free)", "-device", "virtio-net-pci,netdev=net\(free),mac=02:00:00:00:01:\(last)"]
        let failed = try await start(unchecked, socket: directory.file("q.sock"))
        #expect(failed?.contains("PCI") == true, "\(failed ?? "QEMU started")")
        try? FileManager.default.removeItem(atPath: directory.file("q.sock"))

        // The most kvm-launch gives a VM, in shared slots: QEMU builds the machine; one more is refused.
        let most = configuration(nics: NICLayout.maximumNICs, vga: vga, directory: directory)
        #expect(try most.nicLayout().addresses.contains { $0 != nil })
        let startedMost = try await start(try most.arguments(), socket: directory.file("q.sock"))
        #expect(startedMost == nil, "QEMU starts with \(NICLayout.maximumNICs) NICs: \(startedMost ?? "")")
        let tooMany = configuration(nics: NICLayout.maximumNICs + 1, vga: vga, directory: directory)
        #expect(throws: QEMUConfigurationError.moreNICsThanSupported(count: NICLayout.maximumNICs + 1, maximum: NICLayout.maximumNICs)) {
            try tooMany.arguments()
        }
    }

    @Test func aSocketPathLongerThanUnixAllowsIsRefused() throws {
        let longest = "/" + String(repeating: "s", count: 106)
        #expect(throws: Never.self) { try QEMUConfiguration(accelerator: .tcg, disk: nil, qmpSocketPath: longest).arguments() }
        #expect(throws: QEMUConfigurationError.socketPathTooLong(longest + "s")) {
            try QEMUConfiguration(accelerator: .tcg, disk: nil, qmpSocketPath: longest + "s").arguments()
        }
    }

    @Test func memoryBeyondThisMachineIsRefused() throws {
        let directory = try TemporaryDirectory()
        try "MemTotal:        2048000 kB\nMemFree:   10 kB\nSwapTotal:       1024000 kB\n".write(toFile: directory.file("meminfo"), atomically: true, encoding: .utf8)
        #expect(throws: Never.self) { try Preflight.checkMemory(3000, meminfoPath: directory.file("meminfo")) }
        #expect(throws: PreflightError.memoryBeyondMachine(requested: 3001, available: 3000)) {
            try Preflight.checkMemory(3001, meminfoPath: directory.file("meminfo"))
        }
        // This host: what /proc/meminfo says, read here independently, is the bound.
        let text = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
        let kib = text.split(separator: "\n").filter { $0.hasPrefix("MemTotal:") || $0.hasPrefix("SwapTotal:") }
            .compactMap { $0.split(separator: " ").dropFirst().first.flatMap { Int($0) } }.reduce(0, +)
        #expect(throws: PreflightError.self) { try Preflight.checkMemory(kib / 1024 + 1) }
        #expect(throws: Never.self) { try Preflight.checkMemory(64) }
    }

    @Test func launcherPathThatDoesNotExistSaysSoWithoutThePATH() {
        #expect(throws: PreflightError.launcherMissing(path: "/nonexistent/qemu")) {
            try Preflight.resolveLauncher("/nonexistent/qemu", searchPath: "/usr/local/bin:/usr/bin:/bin")
        }
        let text = PreflightError.launcherMissing(path: "/nonexistent/qemu").description
        #expect(text.contains("no such file") && !text.contains("/usr/local/bin") && !text.contains("PATH"))
    }
}
