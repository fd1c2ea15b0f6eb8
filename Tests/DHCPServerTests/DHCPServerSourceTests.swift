import DHCPServer
import Foundation
import NetworkTypes
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 10 item 13, on the wire: the server answers only frames whose Ethernet source is the VM's
/// MAC, and never a relayed request. Each negative case has a positive control in the same
/// fixture, so "no answer" cannot come from a broken fixture.
@Suite(.enabled(if: isRoot, "needs root: network namespaces, veth pairs and raw sockets"))
struct DHCPServerSourceTests {
    typealias Conformance = DHCPClientConformanceTests

    /// A DISCOVER from `source` (Ethernet) for `chaddr`, sent as a raw frame from the client side;
    /// returns every DHCP reply with its xid seen on the client link within `waitMilliseconds`
    /// (returning at the first one).
    static func discover(
        on fixture: VethFixture, ethernetSource: MACAddress, chaddr: MACAddress, xid: UInt32,
        giaddr: IPv4Address = IPv4Address(0), waitMilliseconds: Int32
    ) async throws -> [DHCPMessage] {
        var message = DHCPMessage(op: .request, xid: xid, clientMAC: chaddr)
        message.messageType = .discover
        message.giaddr = giaddr
        let frame = UDPFrame.build(
            sourceMAC: ethernetSource, destinationMAC: MACAddress([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            sourceIP: giaddr, destinationIP: IPv4Address(0xFFFF_FFFF),
            sourcePort: giaddr.isUnspecified ? 68 : 67, destinationPort: 67, payload: message.encoded())
        let interface = fixture.clientInterface
        return try await inNetworkNamespace(fixture.clientNamespace) {
            let index = Int32(if_nametoindex(interface))
            let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(UInt16(0x0003).bigEndian))
            guard fd >= 0, index > 0 else { throw FixtureFailure("packet socket on \(interface): errno \(errno)") }
            defer { close(fd) }
            var link = [UInt8](repeating: 0, count: 20)
            withUnsafeBytes(of: UInt16(AF_PACKET)) { link.replaceSubrange(0..<2, with: $0) }
            withUnsafeBytes(of: UInt16(0x0003).bigEndian) { link.replaceSubrange(2..<4, with: $0) }  // ETH_P_ALL
            withUnsafeBytes(of: index) { link.replaceSubrange(4..<8, with: $0) }
            link[11] = 6
            let bound = link.withUnsafeBytes { bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count)) }
            guard bound == 0 else { throw FixtureFailure("bind packet socket: errno \(errno)") }
            let sent = frame.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard sent == frame.count else { throw FixtureFailure("send: errno \(errno)") }

            var replies: [DHCPMessage] = []
            var deadline = timespec()
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            let end = Int64(deadline.tv_sec) * 1000 + Int64(deadline.tv_nsec) / 1_000_000 + Int64(waitMilliseconds)
            var buffer = [UInt8](repeating: 0, count: 2048)
            while replies.isEmpty {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let left = end - (Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000)
                if left <= 0 { break }
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&pfd, 1, Int32(left)) > 0 else { continue }
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard count > 0, let parsed = UDPFrame.parse(Array(buffer[..<count])),
                      let reply = try? DHCPMessage(decoding: parsed.payload),
                      reply.op == .reply, reply.xid == xid else { continue }
                replies.append(reply)
            }
            return replies
        }
    }

    @Test func peerWithTheVMsMACInChaddrGetsNoOffer() async throws {
        try await withFixture { fixture in
            let vmMAC = fixture.clientMAC
            let peerMAC = MACAddress.randomLocal()
            let lease = Conformance.podLease(for: vmMAC)
            let ((control, fromPeer), log) = try await withServer(fixture, lease: lease) {
                let control = try await Self.discover(on: fixture, ethernetSource: vmMAC, chaddr: vmMAC, xid: 0x1111, waitMilliseconds: 5000)
                let fromPeer = try await Self.discover(on: fixture, ethernetSource: peerMAC, chaddr: vmMAC, xid: 0x2222, waitMilliseconds: 1500)
                return (control, fromPeer)
            }
            #expect(control.first?.messageType == .offer, "control: the VM's own DISCOVER is offered; server log: \(log)")
            #expect(fromPeer.isEmpty, "the peer's DISCOVER got \(fromPeer.map { "\($0.messageType.map { "\($0)" } ?? "?")" }); server log: \(log)")
            #expect(log.contains { $0.contains("Ethernet source \(peerMAC) is not the VM's MAC") }, "server log: \(log)")
        }
    }

    @Test func relayedRequestGetsNothing() async throws {
        try await withFixture { fixture in
            let vmMAC = fixture.clientMAC
            let relay = IPv4Address(169, 254, 9, 9)
            // The relay's address on the client side, so an answer to it (today's main sends one) is deliverable.
            try await must(["ip", "-n", fixture.clientNamespace, "addr", "add", "\(relay)/16", "dev", fixture.clientInterface])
            let lease = Conformance.podLease(for: vmMAC)
            let ((control, relayed), log) = try await withServer(fixture, lease: lease) {
                let control = try await Self.discover(on: fixture, ethernetSource: vmMAC, chaddr: vmMAC, xid: 0x3333, waitMilliseconds: 5000)
                let relayed = try await Self.discover(on: fixture, ethernetSource: vmMAC, chaddr: vmMAC, xid: 0x4444,
                                                      giaddr: relay, waitMilliseconds: 1500)
                return (control, relayed)
            }
            #expect(control.first?.messageType == .offer, "control: the VM's own DISCOVER is offered; server log: \(log)")
            #expect(relayed.isEmpty, "the relayed DISCOVER got \(relayed.count) replies; server log: \(log)")
            #expect(log.contains { $0.contains("giaddr set") }, "server log: \(log)")
        }
    }
}
