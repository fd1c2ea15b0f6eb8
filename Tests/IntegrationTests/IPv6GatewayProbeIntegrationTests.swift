import Foundation
import IPv6Server
import NetworkTypes
import Testing
import TestSupport

/// Issue 11 item 2, Docker's global IPv6 gateway: ``GatewayProbe`` against real Linux gateways in
/// namespaces (a veth whose other end owns the global gateway address and a kernel-made link-local
/// address), from the container's namespace, as the launcher runs it before any change.
@Suite(.serialized, .enabled(if: isRoot, needsRootReason))
struct IPv6GatewayProbeIntegrationTests {
    /// A container namespace with `eth0` (fd00:6b72::7/64) and a gateway namespace with `g0`
    /// (fd00:6b72::1/64), set up by `gateway` before the link-local address is made.
    static func withLink<T>(gatewaySetup: [String] = [], _ body: (TestNamespace, TestNamespace) async throws -> T) async throws -> T {
        let container = try TestNamespace(prefix: "kl6gp-ct")
        defer { container.destroy() }
        let gateway = try TestNamespace(prefix: "kl6gp-gw")
        defer { gateway.destroy() }
        try run(["ip", "-n", gateway.name, "link", "add", "g0", "type", "veth", "peer", "name", "eth0", "netns", container.name])
        for command in gatewaySetup { try gateway.exec(command.split(separator: " ").map(String.init)) }
        try gateway.ip("link set g0 up")
        try container.ip("link set eth0 up")
        try gateway.ip("-6 addr add fd00:6b72::1/64 dev g0 nodad")
        try container.ip("-6 addr add fd00:6b72::7/64 dev eth0 nodad")
        for namespace in [container, gateway] {
            var ready = false
            for _ in 0..<50 where !ready {
                ready = try !namespace.exec(["ip", "-6", "-o", "addr", "show", "scope", "link"]).stdout.isEmpty
                    && namespace.exec(["ip", "-6", "-o", "addr", "show", "tentative"]).stdout.isEmpty
                if !ready { usleep(100_000) }
            }
            #expect(ready, "\(namespace.name) has a settled link-local address")
        }
        return try await body(container, gateway)
    }

    static func linkLocal(_ namespace: TestNamespace, _ device: String) throws -> IPv6Address {
        let line = try namespace.exec(["ip", "-6", "-o", "addr", "show", "dev", device, "scope", "link"]).stdout
        return try #require(line.split(separator: " ").dropFirst(3).first?.split(separator: "/").first.flatMap { IPv6Address($0) }, "\(line)")
    }

    static func mac(_ namespace: TestNamespace, _ device: String) throws -> MACAddress {
        try #require(MACAddress(try namespace.exec(["cat", "/sys/class/net/\(device)/address"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    static func probe(_ container: TestNamespace, localLinkLocal: IPv6Address?) async throws -> Result<GatewayLinkLocal, GatewayDiscoveryError> {
        try await container.onThread {
            Result { () throws(GatewayDiscoveryError) in
                try GatewayProbe.discover(gateway: IPv6Address("fd00:6b72::1")!, interfaceName: "eth0", localLinkLocal: localLinkLocal)
            }
        }
    }

    @Test func aKernelMadeLinkLocalAddressIsLearned() async throws {
        try await Self.withLink { container, gateway in
            let expected = try Self.linkLocal(gateway, "g0")
            let found = try await Self.probe(container, localLinkLocal: Self.linkLocal(container, "eth0")).get()
            let gatewayMAC = try Self.mac(gateway, "g0")
            #expect(found.address == expected && found.mac == gatewayMAC, "\(found)")
            #expect(found.method == .echo)
        }
    }

    @Test func aStablePrivacyLinkLocalAddressIsLearnedByTheEcho() async throws {
        let setup = ["sysctl -q -w net.ipv6.conf.g0.stable_secret=2001:db8:6b72::1234", "ip link set g0 addrgenmode stable_secret"]
        try await Self.withLink(gatewaySetup: setup) { container, gateway in
            let expected = try Self.linkLocal(gateway, "g0")
            let eui64 = IPv6Address.linkLocal(eui64: try Self.mac(gateway, "g0"))
            #expect(expected != eui64, "the fixture's link-local address is not EUI-64")
            let found = try await Self.probe(container, localLinkLocal: Self.linkLocal(container, "eth0")).get()
            #expect(found.address == expected && found.method == .echo, "\(found)")
        }
    }

    @Test func aGatewayIgnoringMulticastEchoIsLearnedByItsEUI64Address() async throws {
        try await Self.withLink(gatewaySetup: ["sysctl -q -w net.ipv6.icmp.echo_ignore_multicast=1"]) { container, gateway in
            let found = try await Self.probe(container, localLinkLocal: Self.linkLocal(container, "eth0")).get()
            let expected = try Self.linkLocal(gateway, "g0")
            #expect(found.address == expected && found.method == .eui64, "\(found)")
        }
    }

    @Test func withoutALinkLocalAddressTheProbeAsksFromTheMACsEUI64Address() async throws {
        try await Self.withLink { container, gateway in
            let own = try Self.linkLocal(container, "eth0")
            try container.ip("-6 addr del \(own)/64 dev eth0")
            let found = try await Self.probe(container, localLinkLocal: nil).get()
            let expected = try Self.linkLocal(gateway, "g0")
            #expect(found.address == expected, "\(found)")
        }
    }

    @Test func aSilentGatewayIsReportedWithinTheSchedule() async throws {
        try await Self.withLink { container, gateway in
            try gateway.ip("-6 addr del fd00:6b72::1/64 dev g0")
            let started = ContinuousClock.now
            let result = try await Self.probe(container, localLinkLocal: Self.linkLocal(container, "eth0"))
            let waited = ContinuousClock.now - started
            #expect(throws: GatewayDiscoveryError.gatewaySilent(gateway: IPv6Address("fd00:6b72::1")!, seconds: 2.1)) { try result.get() }
            #expect(waited >= .seconds(2) && waited < .seconds(10), "bounded by the schedule: \(waited)")
        }
    }
}
