import Foundation
import TestSupport
import Testing
import NetworkTypes
import QEMU
import Supervisor


/// Opens a new, non-persistent tap device (it disappears when the descriptor closes).
private func openTap(named name: String) throws -> Int32 {
    let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
    guard fd >= 0 else { throw FixtureFailure("cannot open /dev/net/tun: \(String(cString: strerror(errno)))") }
    var request = ifreq()
    withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { $0.copyBytes(from: Array(name.utf8)) }
    request.ifr_ifru.ifru_flags = Int16(0x0002 | 0x1000)  // IFF_TAP | IFF_NO_PI
    guard ioctl(fd, 0x4004_54CA, &request) == 0 else {  // TUNSETIFF = _IOW('T', 202, int)
        let reason = String(cString: strerror(errno))
        close(fd)
        throw FixtureFailure("TUNSETIFF \(name) failed: \(reason)")
    }
    return fd
}

/// The whole path a macvtap attachment takes, with plain taps standing in: the
/// launcher's descriptors are mapped to the child numbers named in QEMU's
/// arguments, and QEMU attaches each NIC, in order, with its MAC.
@Suite struct TapEndToEndTests {
    @Test(.enabled(if: isRoot, "needs root: creates tap devices through /dev/net/tun"))
    func nicsReachQEMUAtTheNumberedDescriptorsWithTheirMACs() async throws {
        let suffix = String(UInt32.random(in: 0...0xFFFFF), radix: 16)
        let first = try openTap(named: "klA\(suffix)")
        defer { close(first) }
        let second = try openTap(named: "klB\(suffix)")
        defer { close(second) }

        let macs = [MACAddress("02:42:0a:00:00:07")!, MACAddress("02:42:0a:01:00:09")!]
        let directory = try TemporaryDirectory()
        let socket = directory.file("qmp.sock")
        let null = NullDevice()
        // Child numbers 3 and 4, whatever the parent's numbers are.
        let configuration = QEMUConfiguration(
            accelerator: .tcg, memoryMiB: 64, disk: nil,
            nics: [
                NetworkInterfaceCard(mac: macs[0], backend: .tapFileDescriptor(3, vhost: .off)),
                NetworkInterfaceCard(mac: macs[1], backend: .tapFileDescriptor(4, vhost: .off)),
            ],
            qmpSocketPath: socket, extraArguments: ["-S"])
        let mappings = FileDescriptorMapping.sequential([first, second])
        #expect(mappings.map(\.child) == configuration.childFileDescriptors)

        let (stops, requests) = makeStopStream()
        let supervisor = Supervisor(policy: ShutdownPolicy(powerdownTimeout: .zero), reaping: .supervisedChildOnly)
        let run = Task {
            try await supervisor.run(
                ChildCommand(
                    executable: qemuBinary, arguments: try configuration.arguments(),
                    fileDescriptors: mappings + [FileDescriptorMapping(parent: null.fd, child: 0), FileDescriptorMapping(parent: null.fd, child: 1)]),
                stopActions: .qmp(socketPath: socket), stopRequests: stops)
        }
        try await waitForFile(socket)

        let client = try await QMPClient.connect(socketPath: socket)
        let filters = try await client.execute("query-rx-filter")
        // "info network" pairs each NIC (with its MAC) with its backend (with its fd).
        let network = try await client.execute("human-monitor-command", arguments: ["command-line": .string("info network")])
        client.close()

        guard case let .array(entries) = filters else { throw FixtureFailure("unexpected \(filters)") }
        #expect(Set(entries.compactMap { $0["main-mac"]?.stringValue }) == Set(macs.map(\.description)))
        let lines = (network.stringValue ?? "").split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        let pairs = zip(lines, lines.dropFirst()).filter { $0.0.contains("type=nic") }.map { nic, backend in
            (nic.components(separatedBy: "macaddr=").last ?? "", backend)
        }
        #expect(pairs.count == 2)
        #expect(pairs.first?.0 == macs[0].description && pairs.first?.1.hasSuffix("net0: index=0,type=tap,fd=3") == true)
        #expect(pairs.last?.0 == macs[1].description && pairs.last?.1.hasSuffix("net1: index=0,type=tap,fd=4") == true)

        requests.yield(StopRequest(reason: "test"))
        let result = try await run.value
        #expect(result.outcome == .quitAfterTimeout)
    }
}
