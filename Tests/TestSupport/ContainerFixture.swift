import Foundation

/// A simulated container: a network namespace whose interfaces are veths to a "network" namespace
/// (the peer), each with addresses and optionally a default gateway the peer owns, plus a
/// `resolv.conf` that `ip netns exec` shows as the container's own.
public final class ContainerFixture: @unchecked Sendable {  // immutable after init
    public struct Interface: Sendable {
        public var name: String
        /// `ADDR/PREFIX`, in order.
        public var addresses: [String]
        /// The peer namespace's address on the other end (`ADDR/PREFIX`), which is also the gateway.
        public var peerAddress: String?
        public var defaultRoute: Bool
        /// The MTU of both ends of the veth; nil keeps the kernel's 1500.
        public var mtu: Int?
        public init(name: String, addresses: [String], peerAddress: String? = nil, defaultRoute: Bool = false, mtu: Int? = nil) {
            self.name = name
            self.addresses = addresses
            self.peerAddress = peerAddress
            self.defaultRoute = defaultRoute
            self.mtu = mtu
        }
    }

    public let container: TestNamespace
    public let peer: TestNamespace
    public let interfaces: [Interface]
    /// A private directory for this test (images, run directory), removed by ``destroy()``.
    public let directory: URL

    public init(_ interfaces: [Interface], resolvConf: String = "nameserver 192.0.2.53\nsearch example.test corp.example.test\n") throws {
        container = try TestNamespace(prefix: "kl-ct")
        do {
            peer = try TestNamespace(prefix: "kl-net")
        } catch {
            container.destroy()
            throw error
        }
        self.interfaces = interfaces
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvm-launch-test-\(container.name)")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: "/etc/netns/\(container.name)", withIntermediateDirectories: true)
            try resolvConf.write(toFile: "/etc/netns/\(container.name)/resolv.conf", atomically: true, encoding: .utf8)
            for (position, interface) in interfaces.enumerated() {
                try run(["ip", "-n", peer.name, "link", "add", "p\(position)", "type", "veth", "peer", "name", interface.name, "netns", container.name])
                if let mtu = interface.mtu {
                    try peer.ip("link set p\(position) mtu \(mtu)")
                    try container.ip("link set \(interface.name) mtu \(mtu)")
                }
                try peer.ip("link set p\(position) up")
                if let peerAddress = interface.peerAddress { try peer.ip("addr add \(peerAddress) dev p\(position)") }
                try container.exec(["sysctl", "-q", "-w", "net.ipv6.conf.\(interface.name).accept_dad=0"])
                try container.ip("link set \(interface.name) up")
                for address in interface.addresses { try container.ip("addr add \(address) dev \(interface.name)") }
                if interface.defaultRoute, let gateway = interface.peerAddress?.split(separator: "/").first {
                    try container.ip("route add default via \(gateway) dev \(interface.name)")
                }
            }
            try waitForSettledAddresses()
        } catch {
            destroy()
            throw error
        }
    }

    /// Waits (bounded) until no IPv6 address is still tentative, so snapshots compare settled state.
    func waitForSettledAddresses() throws {
        // Carrier first: the kernel adds the IPv6 link-local address only once the veth is running.
        for _ in 0..<50 {
            let states = try interfaces.map { try container.exec(["cat", "/sys/class/net/\($0.name)/operstate"]).stdout }
            if states.allSatisfy({ $0.hasPrefix("up") }) { break }
            usleep(100_000)
        }
        for _ in 0..<50 {
            let tentative = try container.exec(["ip", "-6", "addr", "show", "tentative"]).stdout
            if tentative.isEmpty { return }
            usleep(100_000)
        }
    }

    /// Deletes both namespaces, the resolv.conf and the private directory.
    public func destroy() {
        container.destroy()
        peer.destroy()
        try? FileManager.default.removeItem(atPath: "/etc/netns/\(container.name)")
        try? FileManager.default.removeItem(at: directory)
    }

    /// The container's links, addresses and routes in a comparable form (what a user would check with
    /// `ip link`, `ip addr`, `ip route`), ignoring kernel-managed IPv6 link-local addresses' order.
    public func state() throws -> String {
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
        let routes = try container.exec(["ip", "route", "show", "table", "all"]).stdout.split(separator: "\n").map(String.init).sorted()
        return (links + ["--"] + addresses + ["--"] + routes).joined(separator: "\n")
    }

    /// The MAC of a container interface as `ip` prints it.
    public func mac(of interface: String) throws -> String {
        let text = try container.exec(["cat", "/sys/class/net/\(interface)/address"]).stdout
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Pings `address` from the peer namespace until it answers (at most `attempts` one-second tries).
    public func pingFromPeer(_ address: String, attempts: Int = 30) -> Bool {
        for _ in 0..<attempts {
            if let result = try? peer.exec(["ping", "-c", "1", "-W", "1", address], check: false), result.status == 0 { return true }
        }
        return false
    }

    /// The MAC the peer learned for `address` (after a ping), from its neighbour table.
    public func peerNeighbourMAC(_ address: String) throws -> String? {
        let text = try peer.exec(["ip", "neigh", "show", address]).stdout
        let words = text.split(separator: " ")
        guard let position = words.firstIndex(of: "lladdr"), position + 1 < words.count else { return nil }
        return String(words[position + 1])
    }
}

/// The repository root (for image/ and scripts/), from this file's path.
public var repositoryRoot: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

/// The test guest built by `image/build.sh` (`make test` builds it first).
public var testGuestImage: String { repositoryRoot.appendingPathComponent("image/out/test-guest.qcow2").path }

/// One `KVMLAUNCH-NIC` line of the test guest's console, parsed.
public struct GuestNIC: Sendable, Equatable {
    public var fields: [String: String]
    public init?(line: String) {
        guard let range = line.range(of: "KVMLAUNCH-NIC ") else { return nil }
        var fields: [String: String] = [:]
        for pair in line[range.upperBound...].split(separator: " ") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        self.fields = fields
    }
    public var name: String? { fields["name"] }
    public var mac: String? { fields["mac"] }
    public var address: String? { fields["addr"] }
    public var gateway: String? { fields["gw"] }
    public var dns: String? { fields["dns"] }
    public var search: String? { fields["search"] }
    public var mtu: String? { fields["mtu"] }
    public var routes: String? { fields["routes"] }
}
