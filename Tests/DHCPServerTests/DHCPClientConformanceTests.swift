import DHCPServer
import Foundation
import NetworkTypes
import TestSupport
import Testing

/// Real DHCP clients against the real server, each in its own pair of network namespaces.
@Suite(.enabled(if: isRoot, "needs root: network namespaces, veth pairs and raw sockets"))
struct DHCPClientConformanceTests {
    /// A pod-style lease: /24, on-link gateway, one extra static route, DNS, search list, MTU.
    static func podLease(for mac: MACAddress) -> DHCPLease {
        DHCPLease(
            clientMAC: mac,
            address: cidr("10.42.0.7/24"),
            serverIdentifier: ip("169.254.0.1"),
            router: ip("10.42.0.1"),
            staticRoutes: [DHCPStaticRoute(destination: cidr("192.168.50.0/24"), gateway: ip("10.42.0.254"))],
            dnsServers: [ip("10.43.0.10"), ip("10.43.0.11")],
            domainName: "example.internal",
            searchDomains: ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"],
            hostname: "vm-test",
            mtu: 1400)
    }

    /// A Calico-style lease: /32 with a gateway outside the subnet, reachable only through the
    /// host route option 121 installs before the default route.
    static func calicoLease(for mac: MACAddress) -> DHCPLease {
        DHCPLease(
            clientMAC: mac,
            address: cidr("10.0.0.5/32"),
            serverIdentifier: ip("169.254.0.1"),
            router: ip("169.254.1.1"),
            staticRoutes: [DHCPStaticRoute(destination: cidr("169.254.1.1/32"), gateway: IPv4Address(0))],
            dnsServers: [ip("10.96.0.10")],
            searchDomains: ["ns1.svc.cluster.local", "svc.cluster.local"],
            mtu: 1440)
    }

    /// An address beyond the gateway: reachable from the client only through its default route.
    static let farAddress = "198.51.100.1"

    /// Makes the server namespace act as the gateway: it owns the gateway address and the far
    /// address and routes back to the leased address, so a ping proves the default route works.
    static func makeServerSideGateway(_ fixture: VethFixture, lease: DHCPLease) async throws {
        let gateway = try #require(lease.router)
        let gatewayPrefix = lease.address.contains(gateway) ? lease.address.prefixLength : 32
        try await must(["ip", "-n", fixture.serverNamespace, "addr", "add", "\(gateway)/\(gatewayPrefix)", "dev", fixture.serverInterface])
        try await must(["ip", "-n", fixture.serverNamespace, "addr", "add", "\(farAddress)/32", "dev", "lo"])
        if !lease.address.contains(gateway) {
            try await must(["ip", "-n", fixture.serverNamespace, "route", "add", "\(lease.address.address)/32", "dev", fixture.serverInterface])
        }
    }

    @Test(arguments: DHCPClient.allCases)
    func podLeaseIsFullyApplied(client: DHCPClient) async throws {
        try await withFixture { fixture in
            let lease = Self.podLease(for: fixture.clientMAC)
            try await Self.makeServerSideGateway(fixture, lease: lease)
            let (result, log) = try await withServer(fixture, lease: lease) {
                try await client.acquire(on: fixture)
            }
            #expect(result.succeeded, "\(client) failed: \(result.output)\nserver log: \(log)")
            #expect(log.contains { $0.contains("DHCPDISCOVER -> DHCPOFFER") }, "server log: \(log)")
            #expect(log.contains { $0.contains("DHCPREQUEST -> DHCPACK") }, "server log: \(log)")

            #expect(try await fixture.clientAddresses() == ["10.42.0.7/24"])
            let routes = try await fixture.clientRoutes()
            #expect(routes.contains("default via 10.42.0.1"), "routes: \(routes)")
            #expect(routes.contains("192.168.50.0/24 via 10.42.0.254"), "routes: \(routes)")
            #expect(routes.contains("10.42.0.0/24 dev"), "routes: \(routes)")
            try await Self.expectMTU(1400, client: client, fixture: fixture)

            let resolv = client.resolvConf(of: fixture)
            #expect(resolv.contains("nameserver 10.43.0.10") && resolv.contains("nameserver 10.43.0.11"), "resolv.conf: \(resolv)\nclient output: \(result.output)")
            // Debian's dhclient-script puts the domain name (option 15) first; the rest is option 119.
            #expect(Self.searchList(resolv).filter { $0 != "example.internal" } == lease.searchDomains, "resolv.conf: \(resolv)\nclient output: \(result.output)")
            try await Self.expectWorkingDefaultRoute(fixture)
        }
    }

    @Test(arguments: DHCPClient.allCases)
    func calicoStyleSlash32GetsWorkingDefaultRoute(client: DHCPClient) async throws {
        try await withFixture { fixture in
            let lease = Self.calicoLease(for: fixture.clientMAC)
            try await Self.makeServerSideGateway(fixture, lease: lease)
            let (result, log) = try await withServer(fixture, lease: lease) {
                try await client.acquire(on: fixture)
            }
            #expect(result.succeeded, "\(client) failed: \(result.output)\nserver log: \(log)")
            #expect(try await fixture.clientAddresses() == ["10.0.0.5/32"])
            let routes = try await fixture.clientRoutes()
            #expect(routes.contains("169.254.1.1 dev"), "routes: \(routes)")
            #expect(routes.contains("default via 169.254.1.1"), "routes: \(routes)")
            try await Self.expectMTU(1440, client: client, fixture: fixture)
            let resolv = client.resolvConf(of: fixture)
            #expect(resolv.contains("nameserver 10.96.0.10"), "resolv.conf: \(resolv)\nclient output: \(result.output)")
            #expect(Self.searchList(resolv) == lease.searchDomains, "resolv.conf: \(resolv)\nclient output: \(result.output)")
            try await Self.expectWorkingDefaultRoute(fixture)
        }
    }

    @Test(arguments: DHCPClient.allCases)
    func anotherMACGetsNoAnswer(client: DHCPClient) async throws {
        try await withFixture { fixture in
            // The lease is for a different MAC than the client's.
            let lease = Self.podLease(for: MACAddress.randomLocal())
            let (result, log) = try await withServer(fixture, lease: lease) {
                try await client.acquire(on: fixture, .init(patient: false))
            }
            #expect(!result.succeeded, "\(client) got a lease meant for another MAC: \(result.output)")
            #expect(try await fixture.clientAddresses().isEmpty)
            // The server did see the client, and chose silence (its frames' source is not the VM's MAC).
            #expect(log.contains { $0.contains("Ethernet source \(fixture.clientMAC) is not the VM's MAC") }, "server log: \(log)")
            #expect(!log.contains { $0.contains("DHCPOFFER") }, "server log: \(log)")
        }
    }

    /// The names on the `search` line of a resolv.conf, without trailing dots.
    static func searchList(_ resolvConf: String) -> [String] {
        let line = resolvConf.split(separator: "\n").first { $0.hasPrefix("search ") } ?? ""
        return line.split(separator: " ").dropFirst().map { String($0.hasSuffix(".") ? $0.dropLast() : $0) }
    }

    /// udhcpc (our script) and dhclient (Debian's script) set the link MTU from option 26;
    /// dhcpcd 9 leaves the link alone and puts the MTU on every route it installs.
    static func expectMTU(_ mtu: Int, client: DHCPClient, fixture: VethFixture) async throws {
        switch client {
        case .udhcpc, .dhclient:
            #expect(try await fixture.clientMTU() == mtu, "\(client) link MTU")
        case .dhcpcd:
            let routes = try await fixture.clientJSON(["-4", "route", "show", "table", "main"])
            let routeMTUs = routes.map { ($0["metrics"] as? [[String: Any]])?.compactMap { $0["mtu"] as? Int }.first }
            #expect(!routeMTUs.isEmpty && routeMTUs.allSatisfy { $0 == mtu }, "dhcpcd route MTUs \(routeMTUs), wanted \(mtu)")
        }
    }

    /// A ping to an address only the gateway owns: the default route really carries traffic.
    static func expectWorkingDefaultRoute(_ fixture: VethFixture) async throws {
        let ping = try await runAsync(["ip", "netns", "exec", fixture.clientNamespace, "ping", "-c", "1", "-W", "2", farAddress], mergeOutput: true, check: false, timeout: 10)
        #expect(ping.succeeded, "ping \(farAddress) via the default route failed: \(ping.output)")
    }
}
