import Foundation

/// A simulated container: a network namespace whose interfaces are veths to a "network" namespace
/// (the peer), plus a `resolv.conf` that `ip netns exec` shows as the container's own.
///
/// It expresses the shapes real runtimes make: an on-link default gateway (Docker, podman), a `/32`
/// with a link-scope route to an off-subnet gateway (Calico), IPv6 addresses and routes, interfaces
/// without any address, and several interfaces created in any order (`creationOrder`), so interface
/// index order and list order can differ. Every command that builds it is checked: a shape the
/// kernel refuses fails the fixture, it is never left out quietly.
package final class ContainerFixture: @unchecked Sendable {  // immutable after init
    package struct Interface: Sendable {
        package var name: String
        /// `ADDR/PREFIX`, IPv4 or IPv6, in order (IPv6 ones without duplicate address detection).
        package var addresses: [String]
        /// The peer namespace's address on the other end (`ADDR/PREFIX`), which is also the gateway
        /// of `defaultRoute`.
        package var peerAddress: String?
        /// `default via <peerAddress>` on this interface.
        package var defaultRoute: Bool
        /// More routes on this interface, each the arguments of `ip route add` without `dev`
        /// (e.g. `169.254.1.1 scope link`, `default via 169.254.1.1`, `fd00:2::/64 via fd00:1::1`),
        /// added in this order after the addresses.
        package var routes: [String]
        /// More addresses of the peer's end (`ADDR/PREFIX`, IPv4 or IPv6).
        package var peerAddresses: [String]
        /// Routes in the peer namespace through its end (`ip route add` arguments without `dev`),
        /// e.g. the host route toward a Calico pod's `/32`.
        package var peerRoutes: [String]
        /// The MTU of both ends of the veth; nil keeps the kernel's 1500.
        package var mtu: Int?
        package init(name: String, addresses: [String], peerAddress: String? = nil, defaultRoute: Bool = false,
                    routes: [String] = [], peerAddresses: [String] = [], peerRoutes: [String] = [], mtu: Int? = nil) {
            self.name = name
            self.addresses = addresses
            self.peerAddress = peerAddress
            self.defaultRoute = defaultRoute
            self.routes = routes
            self.peerAddresses = peerAddresses
            self.peerRoutes = peerRoutes
            self.mtu = mtu
        }

        /// Calico's pod shape: `ADDRESS/32`, `169.254.1.1 dev NAME scope link`, `default via 169.254.1.1`;
        /// the peer (the node) owns 169.254.1.1, routes `ADDRESS/32` to the pod and answers ARP for it.
        package static func calico(name: String = "eth0", address: String) -> Interface {
            Interface(name: name, addresses: ["\(address)/32"], routes: ["169.254.1.1 scope link", "default via 169.254.1.1"],
                      peerAddresses: ["169.254.1.1/32"], peerRoutes: ["\(address)/32"])
        }
    }

    package let container: TestNamespace
    package let peer: TestNamespace
    package let interfaces: [Interface]
    /// A private directory for this test (images, run directory), removed by ``destroy()``.
    package let directory: URL

    /// The peer's end of `interface` (`p0`, `p1`, … by position in `interfaces`).
    package func peerLink(of interface: String) -> String? {
        interfaces.firstIndex { $0.name == interface }.map { "p\($0)" }
    }

    /// - Parameter creationOrder: interface names in the order their links are created (default: the
    ///   list order); interface indexes follow it.
    package init(_ interfaces: [Interface], creationOrder: [String]? = nil,
                resolvConf: String = "nameserver 192.0.2.53\nsearch example.test corp.example.test\n") throws {
        (container, peer) = try TestNamespace.pair("kl-ct", "kl-net")
        self.interfaces = interfaces
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvm-launch-test-\(container.name)")
        do {
            let order = creationOrder ?? interfaces.map(\.name)
            guard order.sorted() == interfaces.map(\.name).sorted() else {
                throw FixtureFailure("creationOrder \(order) must name every interface of \(interfaces.map(\.name)) once")
            }
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: "/etc/netns/\(container.name)", withIntermediateDirectories: true)
            try resolvConf.write(toFile: "/etc/netns/\(container.name)/resolv.conf", atomically: true, encoding: .utf8)
            for name in order {
                let position = interfaces.firstIndex { $0.name == name }!
                try peer.addVeth("p\(position)", peer: container, peerName: name)
            }
            for (position, interface) in interfaces.enumerated() {
                let peerLink = "p\(position)"
                if let mtu = interface.mtu {
                    try peer.ip("link set \(peerLink) mtu \(mtu)")
                    try container.ip("link set \(interface.name) mtu \(mtu)")
                }
                try peer.ip("link set \(peerLink) up")
                for address in (interface.peerAddress.map { [$0] } ?? []) + interface.peerAddresses {
                    try peer.exec(Self.addressCommand(address, dev: peerLink))
                }
                try container.exec(["sysctl", "-q", "-w", "net.ipv6.conf.\(interface.name).accept_dad=0"])
                try container.ip("link set \(interface.name) up")
                for address in interface.addresses { try container.exec(Self.addressCommand(address, dev: interface.name)) }
                if interface.defaultRoute, let gateway = interface.peerAddress?.split(separator: "/").first {
                    try container.exec(Self.routeCommand("default via \(gateway)", dev: interface.name))
                }
                for route in interface.routes { try container.exec(Self.routeCommand(route, dev: interface.name)) }
                if !interface.peerRoutes.isEmpty {
                    // The node side of a routed (Calico) pod answers ARP for addresses it routes.
                    try peer.exec(["sysctl", "-q", "-w", "net.ipv4.conf.\(peerLink).proxy_arp=1"])
                }
                for route in interface.peerRoutes { try peer.exec(Self.routeCommand(route, dev: peerLink)) }
            }
            try waitForSettledAddresses()
        } catch {
            destroy()
            throw error
        }
    }

    static func addressCommand(_ address: String, dev: String) -> [String] {
        address.contains(":") ? ["ip", "-6", "addr", "add", address, "dev", dev, "nodad"] : ["ip", "addr", "add", address, "dev", dev]
    }

    static func routeCommand(_ route: String, dev: String) -> [String] {
        ["ip"] + (route.contains(":") ? ["-6"] : []) + ["route", "add"] + route.split(separator: " ").map(String.init) + ["dev", dev]
    }

    /// Waits (at most 5 s) until no IPv6 address is still tentative, so snapshots compare settled
    /// state; throws naming the addresses when some stay tentative.
    func waitForSettledAddresses() throws {
        // Carrier first: the kernel adds the IPv6 link-local address only once the veth is running.
        for _ in 0..<50 {
            let states = try interfaces.map { try container.exec(["cat", "/sys/class/net/\($0.name)/operstate"]).stdout }
            if states.allSatisfy({ $0.hasPrefix("up") }) { break }
            usleep(100_000)
        }
        let deadline = Date().addingTimeInterval(5)
        while true {
            let tentative = try container.exec(["ip", "-6", "-o", "addr", "show", "tentative"]).stdout
            if tentative.isEmpty { return }
            if Date() >= deadline { throw FixtureFailure("IPv6 addresses still tentative after 5 s: \(tentative)") }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// Deletes both namespaces, the resolv.conf and the private directory.
    package func destroy() {
        container.destroy()
        peer.destroy()
        try? FileManager.default.removeItem(atPath: "/etc/netns/\(container.name)")
        try? FileManager.default.removeItem(at: directory)
    }

    /// The container's links, addresses and routes in a comparable form (what a user would check with
    /// `ip link`, `ip addr`, `ip route`), ignoring kernel-managed IPv6 link-local addresses' order.
    package func state() throws -> String {
        // A link-local address the launcher just put back is tentative until the kernel's DAD work runs
        // (at once with accept_dad=0, but on a loaded machine a snapshot can come first).
        try waitForSettledAddresses()
        let links = try container.exec(["ip", "-o", "link", "show"]).stdout
            .split(separator: "\n").map { line -> String in
                // Drop the per-run qdisc/state counters; keep name, flags, mtu, MAC, alias, master.
                let fields = line.split(separator: " ")
                var kept: [Substring] = []
                var index = 0
                while index < fields.count {
                    let field = fields[index]
                    if ["qdisc", "state", "mode", "group", "qlen", "link-netns", "link-netnsid"].contains(field) { index += 2; continue }
                    kept.append(field)
                    index += 1
                }
                return kept.joined(separator: " ")
            }
        let addresses = try container.exec(["ip", "-o", "addr", "show"]).stdout
            .split(separator: "\n").map { $0.replacingOccurrences(of: "\\s+valid_lft.*", with: "", options: .regularExpression) }.sorted()
        let routes = (try container.exec(["ip", "-4", "route", "show", "table", "all"]).stdout
            + container.exec(["ip", "-6", "route", "show", "table", "all"]).stdout)
            .split(separator: "\n").map(String.init).sorted()
        return (links + ["--"] + addresses + ["--"] + routes).joined(separator: "\n")
    }

    /// The MAC of a container interface as `ip` prints it.
    package func mac(of interface: String) throws -> String {
        let text = try container.exec(["cat", "/sys/class/net/\(interface)/address"]).stdout
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Pings `address` from the peer namespace until it answers (at most `attempts` one-second tries).
    package func pingFromPeer(_ address: String, attempts: Int = 30) -> Bool {
        for _ in 0..<attempts {
            if let result = try? peer.exec(["ping", "-c", "1", "-W", "1", address], check: false), result.status == 0 { return true }
        }
        return false
    }

    /// The MAC the peer learned for `address` (after a ping), from its neighbour table.
    package func peerNeighbourMAC(_ address: String) throws -> String? {
        let text = try peer.exec(["ip", "neigh", "show", address]).stdout
        let words = text.split(separator: " ")
        guard let position = words.firstIndex(of: "lladdr"), position + 1 < words.count else { return nil }
        return String(words[position + 1])
    }
}

/// The repository root (for image/ and scripts/), from this file's path.
package var repositoryRoot: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

/// The test guest built by `image/build.sh` (`make test` builds it first).
package var testGuestImage: String { repositoryRoot.appendingPathComponent("image/out/test-guest.qcow2").path }

/// One `KVMLAUNCH-NIC` line of the test guest's console, parsed.
package struct GuestNIC: Sendable, Equatable {
    package var fields: [String: String]
    package init?(line: String) {
        guard let range = line.range(of: "KVMLAUNCH-NIC ") else { return nil }
        var fields: [String: String] = [:]
        for pair in line[range.upperBound...].split(separator: " ") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        self.fields = fields
    }
    package var name: String? { fields["name"] }
    package var mac: String? { fields["mac"] }
    package var address: String? { fields["addr"] }
    package var gateway: String? { fields["gw"] }
    package var dns: String? { fields["dns"] }
    package var search: String? { fields["search"] }
    package var mtu: String? { fields["mtu"] }
    package var routes: String? { fields["routes"] }
}
