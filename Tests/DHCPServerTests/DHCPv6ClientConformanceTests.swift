import DHCPServer
import Foundation
import IPv6Server
import Logging
import NetworkTypes
import TestSupport
import Testing

/// Real DHCPv6 clients against the real IPv6 responder (Router Advertisements + DHCPv6), each in
/// its own pair of namespaces: the client on the VM side, the responder and the gateway on the
/// container side.
@Suite(.enabled(if: isRoot, "needs root: network namespaces, veth pairs and packet sockets"))
struct DHCPv6ClientConformanceTests {
    /// An address only the gateway owns: reached from the client only through its default route.
    static let farAddress = "2001:db8:ff::1"

    /// The two gateway shapes of issue 11: a global address on the link (Docker: `default via
    /// fd00:…::1`) and a link-local one (Calico: `default via fe80::ecee:eeff:feee:eeee`, /128 pod address).
    enum Shape: String, CaseIterable, Sendable {
        case docker, calico

        var address: IPv6Interface { self == .docker ? IPv6Interface("fd00:d0c::5/64")! : IPv6Interface("fd00:ca1::5/128")! }
        static let calicoGateway = IPv6Address("fe80::ecee:eeff:feee:eeee")!
    }

    /// Builds the gateway in the server namespace and returns the lease whose router is its link-local address.
    static func prepare(_ shape: Shape, fixture: VethFixture) async throws -> IPv6Lease {
        let server = fixture.serverNamespace, device = fixture.serverInterface
        try await must(["ip", "-n", server, "addr", "add", "\(farAddress)/128", "dev", "lo"])
        // A gateway is a router: its Neighbor Advertisements carry the Router flag. Without it the
        // VM's kernel drops the default route at the first NA (RFC 4861 section 7.2.5).
        try await must(["ip", "netns", "exec", server, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"])
        let router: IPv6Address
        switch shape {
        case .docker:
            // The gateway owns fd00:d0c::1/64 on the link; its link-local is the kernel's EUI-64 one.
            try await must(["ip", "-n", server, "addr", "add", "fd00:d0c::1/64", "dev", device, "nodad"])
            let mac = try #require(try await linkMAC(namespace: server, device: device))
            router = .linkLocal(eui64: mac)
        case .calico:
            try await must(["ip", "-n", server, "addr", "add", "\(Shape.calicoGateway)/64", "dev", device, "nodad"])
            try await must(["ip", "-n", server, "route", "add", "\(shape.address.address)/128", "dev", device])
            router = Shape.calicoGateway
        }
        return IPv6Lease(clientMAC: fixture.clientMAC, addresses: [shape.address],
                         dnsServers: [IPv6Address("fd00:53::53")!, IPv6Address("fd00:53::54")!],
                         searchDomains: ["svc.example.internal", "example.internal"],
                         router: router, mtu: 1400)
    }

    static func linkMAC(namespace: String, device: String) async throws -> MACAddress? {
        let result = try await runAsync(["ip", "-j", "-n", namespace, "link", "show", "dev", device])
        guard let data = result.output.data(using: .utf8),
              let links = try JSONSerialization.jsonObject(with: data) as? [[String: Any]],
              let text = links.first?["address"] as? String else { return nil }
        return MACAddress(text)
    }

    @Test(arguments: DHCPv6Client.allCases, Shape.allCases)
    func clientGetsAddressPrefixDNSDomainAndDefaultRoute(client: DHCPv6Client, shape: Shape) async throws {
        try await withFixture { fixture in
            let lease = try await Self.prepare(shape, fixture: fixture)
            let (result, log) = try await withIPv6Server(fixture, lease: lease) {
                try await client.acquire(on: fixture)
            }
            #expect(result.succeeded, "\(client) failed: \(result.output)\nserver log: \(log)")
            #expect(log.contains { $0.contains("-> REPLY \(shape.address.address)") }, "server log: \(log)")

            let addresses = try await fixture.clientIPv6Addresses()
            #expect(addresses.contains { $0.hasPrefix("\(shape.address.address)/") }, "addresses: \(addresses)\n\(result.output)")
            let routes = try await fixture.clientIPv6Routes()
            if shape.address.prefixLength < 128 {
                // The prefix is on-link (from the RA's Prefix Information), not only the /128.
                #expect(routes.contains { $0.hasPrefix("\(shape.address.network)/\(shape.address.prefixLength) ") }, "routes: \(routes)")
            }
            #expect(routes.contains { $0.hasPrefix("default via \(lease.router!)") }, "routes: \(routes)\nserver log: \(log)")
            // No SLAAC address: the prefix carries A=0.
            #expect(addresses.filter { !$0.hasPrefix("fe80:") }.count == 1, "addresses: \(addresses)")

            let resolv = client.resolvConf(of: fixture)
            #expect(resolv.contains("nameserver fd00:53::53") && resolv.contains("nameserver fd00:53::54"), "resolv.conf: \(resolv)\n\(result.output)")
            #expect(resolv.contains("svc.example.internal") && resolv.contains(" example.internal"), "resolv.conf: \(resolv)")

            // Both directions: the gateway side reaches the VM's address, the VM reaches beyond the gateway.
            let out = try await runAsync(["ip", "netns", "exec", fixture.clientNamespace, "ping", "-6", "-c", "1", "-W", "3", Self.farAddress], mergeOutput: true, check: false, timeout: 10)
            #expect(out.succeeded, "ping \(Self.farAddress) via the default route failed: \(out.output)\nroutes: \(routes)")
            let back = try await runAsync(["ip", "netns", "exec", fixture.serverNamespace, "ping", "-6", "-c", "1", "-W", "3", "\(shape.address.address)"], mergeOutput: true, check: false, timeout: 10)
            #expect(back.succeeded, "ping the VM's \(shape.address.address) failed: \(back.output)")
            let after = try await fixture.clientIPv6Routes()
            #expect(after.contains { $0.hasPrefix("default via \(lease.router!)") }, "the default route went away: \(after)")
        }
    }

    @Test(arguments: DHCPv6Client.allCases)
    func anotherMACGetsNoAnswer(client: DHCPv6Client) async throws {
        try await withFixture { fixture in
            var lease = try await Self.prepare(.docker, fixture: fixture)
            lease.clientMAC = MACAddress.randomLocal()
            let (result, log) = try await withIPv6Server(fixture, lease: lease) {
                try await client.acquire(on: fixture, patient: false)
            }
            #expect(!result.succeeded, "\(client) got a lease meant for another MAC: \(result.output)")
            #expect(!(try await fixture.clientIPv6Addresses()).contains { $0.hasPrefix("fd00:d0c::5/") })
            #expect(log.contains { $0.contains("not the VM") }, "server log: \(log)")
            #expect(!log.contains { $0.contains("-> REPLY") || $0.contains("-> ADVERTISE") }, "server log: \(log)")
        }
    }
}

/// A real DHCPv6 client run once in the fixture's client namespace.
enum DHCPv6Client: String, CaseIterable, Sendable {
    /// ISC dhclient as Debian's ifupdown runs it for `iface eth0 inet6 dhcp` (after waiting for
    /// the link-local address), with the system's dhclient.conf and /sbin/dhclient-script.
    case dhclient
    /// dhcpcd in IPv6 mode: it handles the Router Advertisement itself and starts DHCPv6 on the M flag.
    case dhcpcd

    func acquire(on fixture: VethFixture, patient: Bool = true) async throws -> ProcessResult {
        let dir = fixture.tempDirectory
        let resolv = "\(dir)/resolv.conf"
        try writeFile(resolv, "")
        let interface = fixture.clientInterface
        // ifupdown's wait-for-ll6: dhclient cannot bind until the link-local address left DAD.
        let waitLinkLocal = "for i in $(seq 60); do ip -6 addr show dev \(interface) scope link | grep -q tentative || break; sleep 0.1; done"
        switch self {
        case .dhclient:
            let limit = patient ? 20 : 6
            return try await fixture.inClient(
                ["timeout", "\(limit)", "dhclient", "-6", "-1", "-v", "-pf", "\(dir)/dhclient6.pid", "-lf", "\(dir)/dhclient6.leases",
                 "-I", "-df", "\(dir)/dhclient.duid", interface],
                setup: "mount --bind \(resolv) /etc/resolv.conf && \(waitLinkLocal)",
                timeout: limit + 10)
        case .dhcpcd:
            let config = "\(dir)/dhcpcd6.conf", hook = "\(dir)/dhcpcd6.hook"
            try writeFile(config, """
                ipv6only
                nohook resolv.conf, hostname, ntp, timesyncd
                option dhcp6_name_servers, dhcp6_domain_search
                ia_na

                """)
            try writeFile(hook, """
                #!/bin/sh
                case "$reason" in
                BOUND6|REBOOT6|RENEW6|REBIND6|INFORM6)
                    {
                        [ -n "$new_dhcp6_domain_search" ] && echo "search $new_dhcp6_domain_search"
                        for server in $new_dhcp6_name_servers; do echo "nameserver $server"; done
                    } > "\(resolv)"
                    ;;
                esac
                exit 0

                """, executable: true)
            return try await fixture.inClient(
                ["dhcpcd", "-f", config, "-c", hook, "-6", "-1", "-w", "-t", patient ? "15" : "5", interface],
                setup: "mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib/dhcpcd && \(waitLinkLocal)",
                timeout: 30)
        }
    }

    func resolvConf(of fixture: VethFixture) -> String {
        (try? String(contentsOfFile: "\(fixture.tempDirectory)/resolv.conf", encoding: .utf8)) ?? ""
    }
}

extension VethFixture {
    /// The client interface's IPv6 addresses as ADDR/PREFIX (link-local included).
    func clientIPv6Addresses() async throws -> [String] {
        let links = try await clientJSON(["-6", "addr", "show", "dev", clientInterface])
        return links.flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }.compactMap { info in
            guard let local = info["local"] as? String, let prefix = info["prefixlen"] as? Int else { return nil }
            return "\(local)/\(prefix)"
        }
    }

    /// The client's IPv6 routes as "DST via GW" / "DST dev" ("default" for ::/0).
    func clientIPv6Routes() async throws -> [String] {
        try await clientJSON(["-6", "route", "show", "table", "main"]).compactMap { route in
            guard let destination = route["dst"] as? String else { return nil }
            let full = destination.contains("/") || destination == "default" ? destination : "\(destination)/128"
            if let gateway = route["gateway"] as? String { return "\(full) via \(gateway)" }
            return "\(full) dev"
        }.sorted()
    }
}

/// ``withResponder(_:make:run:stop:_:)`` with the IPv6 responder for `lease`.
func withIPv6Server<T: Sendable>(
    _ fixture: VethFixture, lease: IPv6Lease, _ body: @Sendable () async throws -> T
) async throws -> (T, [String]) {
    try await withResponder(fixture, make: { try IPv6Server(interfaceName: $0, lease: lease, logger: $1) },
                            run: { try await $0.run() }, stop: { $0.stop() }, body)
}
