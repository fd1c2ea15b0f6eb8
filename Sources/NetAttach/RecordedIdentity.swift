import Netlink
import NetworkTypes

/// What a container interface was before kvm-launch took it over, stored in the interface's own
/// alias (`IFLA_IFALIAS`, at most 255 bytes) so that it lives exactly as long as the namespace.
///
/// A launcher killed with SIGKILL and started again in the same namespace (a Kubernetes container
/// restart) reads it back and restores the interface instead of taking the random MAC for the
/// real one. A clean teardown clears it. The text is compact and versioned:
/// `kvm-launch:v1 m=02:42:0a:2a:00:07 a=10.42.0.7/16 b=10.42.255.255 l=64 6=fd00:42::7/64 r=0.0.0.0/0>10.42.0.1,10.96.0.0/12>10.42.0.1 x=old%20alias`.
/// (`l=` and `6=` are optional fields an older v1 reader would refuse; an older launcher never reads
/// them, since the same image restarts in the same namespace.)
package struct RecordedIdentity: Sendable, Equatable, Codable {
    /// The interface's original MAC: the VM's MAC.
    package var mac: MACAddress
    /// The IPv4 address moved to the VM, if any.
    package var address: IPv4Interface?
    /// Its broadcast address, when it had one.
    package var broadcast: IPv4Address?
    /// IPv4 routes through the interface that removing the address may take away (gateway nil: on-link).
    package var routes: [RecordedRoute]
    /// The alias the interface had before, restored on teardown.
    package var previousAlias: String?
    /// Kept addresses in the moved address's subnet (the kernel's secondaries of it), which go back
    /// after it so that it is primary again (`s=`, only when there are some).
    package var secondaries: [IPv4Interface]
    /// The global IPv6 addresses moved to the VM (`6=`, only when there are some).
    package var ipv6Addresses: [IPv6Interface]
    /// Their ``AddressRecord/flags`` (`~HEX` after an address when not 0); empty or one per address.
    package var ipv6Flags: [UInt32]
    /// When the link-local address fe80::EUI-64(``mac``) was swapped for one from the new MAC, its
    /// prefix length (`l=`): recovery takes the new one off and puts the original back.
    package var linkLocalPrefixLength: Int?

    package init(mac: MACAddress, address: IPv4Interface?, broadcast: IPv4Address? = nil, routes: [RecordedRoute], previousAlias: String?,
                secondaries: [IPv4Interface] = [], ipv6Addresses: [IPv6Interface] = [], ipv6Flags: [UInt32] = [],
                linkLocalPrefixLength: Int? = nil) {
        self.mac = mac
        self.ipv6Addresses = ipv6Addresses
        self.ipv6Flags = ipv6Flags.contains { $0 != 0 } ? ipv6Flags : []
        self.linkLocalPrefixLength = linkLocalPrefixLength
        self.secondaries = secondaries
        self.address = address
        self.broadcast = broadcast
        self.routes = routes
        self.previousAlias = previousAlias
    }

    static let tag = "kvm-launch:v1"
    /// IFALIASZ - 1.
    package static let maximumLength = 255

    /// Whether an alias holds a recorded identity.
    package static func isRecorded(_ alias: String?) -> Bool { alias?.hasPrefix(tag + " ") ?? false }

    /// The alias text. IPv6 addresses that would not fit are dropped (last first), then routes, least
    /// important first (the default route is kept longest); `droppedRoutes` and `droppedIPv6` say how many.
    package func encoded() -> (alias: String, droppedRoutes: Int, droppedIPv6: Int) {
        var head = "\(Self.tag) m=\(mac)"
        if let address { head += " a=\(address)" }
        if let broadcast { head += " b=\(broadcast)" }
        if !secondaries.isEmpty { head += " s=" + secondaries.map(\.description).joined(separator: ",") }
        if let linkLocalPrefixLength { head += " l=\(linkLocalPrefixLength)" }
        let tail = previousAlias.map { " x=" + Self.escape($0) } ?? ""
        var ipv6 = ipv6Addresses.enumerated().map { position, address in
            let flags = position < ipv6Flags.count ? ipv6Flags[position] : 0
            return address.description + (flags == 0 ? "" : "~" + String(flags, radix: 16))
        }
        while !ipv6.isEmpty, (head + " 6=" + ipv6.joined(separator: ",") + tail).utf8.count > Self.maximumLength {
            ipv6.removeLast()
        }
        if !ipv6.isEmpty { head += " 6=" + ipv6.joined(separator: ",") }
        let droppedIPv6 = ipv6Addresses.count - ipv6.count
        var kept = routes.sorted { ($0.destination.prefixLength == 0 ? 0 : 1) < ($1.destination.prefixLength == 0 ? 0 : 1) }
        while true {
            let text = kept.isEmpty ? head + tail : head + " r=" + kept.map(\.encoded).joined(separator: ",") + tail
            if text.utf8.count <= Self.maximumLength || kept.isEmpty {
                let truncated = text.utf8.count <= Self.maximumLength ? text : head
                return (truncated, routes.count - kept.count, droppedIPv6)
            }
            kept.removeLast()
        }
    }

    /// Reads an alias written by ``encoded()``; nil when it is not one.
    package init?(alias: String?) {
        guard let alias, Self.isRecorded(alias) else { return nil }
        var mac: MACAddress?
        var address: IPv4Interface?
        var broadcast: IPv4Address?
        var routes: [RecordedRoute] = []
        var previous: String?
        var secondaries: [IPv4Interface] = []
        var ipv6: [IPv6Interface] = []
        var ipv6Flags: [UInt32] = []
        var linkLocal: Int?
        for field in alias.dropFirst(Self.tag.count + 1).split(separator: " ") {
            let value = field.dropFirst(2)
            switch field.prefix(2) {
            case "m=": mac = MACAddress(value)
            case "a=":
                guard let parsed = IPv4Interface(value) else { return nil }
                address = parsed
            case "b=":
                guard let parsed = IPv4Address(value) else { return nil }
                broadcast = parsed
            case "r=":
                for item in value.split(separator: ",") {
                    guard let route = RecordedRoute(encoded: item) else { return nil }
                    routes.append(route)
                }
            case "s=":
                for item in value.split(separator: ",") {
                    guard let parsed = IPv4Interface(item) else { return nil }
                    secondaries.append(parsed)
                }
            case "6=":
                for item in value.split(separator: ",") {
                    let parts = item.split(separator: "~", maxSplits: 1, omittingEmptySubsequences: false)
                    guard let parsed = IPv6Interface(parts[0]) else { return nil }
                    var flags: UInt32 = 0
                    if parts.count == 2 {
                        guard let value = UInt32(parts[1], radix: 16) else { return nil }
                        flags = value
                    }
                    ipv6.append(parsed)
                    ipv6Flags.append(flags)
                }
            case "l=":
                guard let parsed = Int(value), (0...128).contains(parsed) else { return nil }
                linkLocal = parsed
            case "x=": previous = Self.unescape(value)
            default: return nil
            }
        }
        guard let mac else { return nil }
        self.init(mac: mac, address: address, broadcast: broadcast, routes: routes, previousAlias: previous, secondaries: secondaries,
                  ipv6Addresses: ipv6, ipv6Flags: ipv6Flags, linkLocalPrefixLength: linkLocal)
    }

    static func escape(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            if byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "%") {
                result.append(Character(UnicodeScalar(byte)))
            } else {
                result += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return result
    }

    static func unescape(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            if text[index] == "%", let end = text.index(index, offsetBy: 3, limitedBy: text.endIndex),
               let byte = UInt8(text[text.index(after: index)..<end], radix: 16) {
                bytes.append(byte)
                index = end
            } else {
                bytes.append(contentsOf: Array(String(text[index]).utf8))
                index = text.index(after: index)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// An IPv4 route through one interface: destination and gateway (nil for on-link).
package struct RecordedRoute: Sendable, Equatable, Hashable, Codable {
    package var destination: IPv4Interface
    package var gateway: IPv4Address?
    /// Route metric; 0 when the kernel reported none.
    package var metric: UInt32

    package init(destination: IPv4Interface, gateway: IPv4Address?, metric: UInt32 = 0) {
        self.destination = IPv4Interface(address: destination.network, prefixLength: destination.prefixLength)
        self.gateway = gateway
        self.metric = metric
    }

    /// From a kernel route, or nil for one that is not IPv4 with a parsable destination.
    package init?(_ route: RouteRecord) {
        guard let destination = route.ipv4Destination else { return nil }
        self.init(destination: destination, gateway: route.ipv4Gateway, metric: route.priority)
    }

    /// `DEST/P>GW` or `DEST/P>` for on-link, `@METRIC` appended when non-zero.
    var encoded: String {
        "\(destination)>\(gateway.map(\.description) ?? "")" + (metric != 0 ? "@\(metric)" : "")
    }

    init?(encoded text: Substring) {
        let parts = text.split(separator: ">", omittingEmptySubsequences: false)
        guard parts.count == 2, let destination = IPv4Interface(parts[0]) else { return nil }
        let gatewayAndMetric = parts[1].split(separator: "@", omittingEmptySubsequences: false)
        var gateway: IPv4Address?
        if !gatewayAndMetric[0].isEmpty {
            guard let parsed = IPv4Address(gatewayAndMetric[0]) else { return nil }
            gateway = parsed
        }
        var metric: UInt32 = 0
        if gatewayAndMetric.count == 2 {
            guard let parsed = UInt32(gatewayAndMetric[1]) else { return nil }
            metric = parsed
        }
        self.init(destination: destination, gateway: gateway, metric: metric)
    }

    /// The kernel route to re-create through interface `index`.
    package func record(interfaceIndex: Int32) -> RouteRecord {
        RouteRecord(family: .inet, destination: .v4(destination.network), prefixLength: destination.prefixLength,
                    gateway: gateway.map { .v4($0) }, interfaceIndex: interfaceIndex, table: .main, routeProtocol: .boot,
                    scope: gateway == nil ? .link : .universe, type: .unicast, priority: metric)
    }
}

extension RecordedIdentity {
    /// The kernel address record to restore.
    package func addressRecord(interfaceIndex: Int32) -> AddressRecord? {
        address.map {
            AddressRecord(interfaceIndex: interfaceIndex, family: .inet, address: .v4($0.address),
                          prefixLength: $0.prefixLength, broadcast: broadcast)
        }
    }
}

extension RecordedIdentity {
    /// The kernel records of the moved IPv6 addresses on interface `index`.
    package func ipv6AddressRecords(interfaceIndex: Int32) -> [AddressRecord] {
        ipv6Addresses.enumerated().map { position, address in
            AddressRecord(interfaceIndex: interfaceIndex, family: .inet6, address: .v6(address.address), prefixLength: address.prefixLength,
                          flags: position < ipv6Flags.count ? ipv6Flags[position] : 0)
        }
    }
}
