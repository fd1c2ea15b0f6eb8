/// Named values for the numbers netlink records carry (`<linux/rtnetlink.h>`, `<linux/if_arp.h>`),
/// so code says `.main` and `.link` instead of 254 and 253.
///
/// Each is a thin wrapper around the kernel's number: values kvm-launch does not name still
/// round-trip unchanged. Integer literals convert, for tests and fixtures.

/// A routing table (`RT_TABLE_*`).
package struct RouteTable: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    package var rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }
    package init(integerLiteral value: UInt32) { rawValue = value }
    /// `RT_TABLE_MAIN`: where `ip route` adds by default.
    package static let main = RouteTable(rawValue: 254)
    /// `RT_TABLE_LOCAL`: the kernel's routes to local and broadcast addresses.
    package static let local = RouteTable(rawValue: 255)
    package var description: String {
        switch self { case .main: "main"; case .local: "local"; default: String(rawValue) }
    }
}

/// Who installed a route (`RTPROT_*`).
package struct RouteProtocol: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    package var rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue }
    package init(integerLiteral value: UInt8) { rawValue = value }
    /// `RTPROT_KERNEL`: made by the kernel for an address (the connected route).
    package static let kernel = RouteProtocol(rawValue: 2)
    /// `RTPROT_BOOT`: added by hand or by a tool (`ip route add`'s default).
    package static let boot = RouteProtocol(rawValue: 3)
    /// `RTPROT_STATIC`: added by an administrator.
    package static let `static` = RouteProtocol(rawValue: 4)
    /// `RTPROT_DHCP`: added by a DHCP client.
    package static let dhcp = RouteProtocol(rawValue: 16)
    package var description: String {
        switch self { case .kernel: "kernel"; case .boot: "boot"; case .static: "static"; case .dhcp: "dhcp"; default: String(rawValue) }
    }
}

/// How far a route or an address reaches (`RT_SCOPE_*`); larger is narrower.
package struct RouteScope: RawRepresentable, Hashable, Comparable, Sendable, Codable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    package var rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue }
    package init(integerLiteral value: UInt8) { rawValue = value }
    /// `RT_SCOPE_UNIVERSE`: through a gateway, or anywhere.
    package static let universe = RouteScope(rawValue: 0)
    /// `RT_SCOPE_LINK`: directly on the link (no gateway).
    package static let link = RouteScope(rawValue: 253)
    /// `RT_SCOPE_HOST`: this host only.
    package static let host = RouteScope(rawValue: 254)
    package static func < (lhs: RouteScope, rhs: RouteScope) -> Bool { lhs.rawValue < rhs.rawValue }
    package var description: String {
        switch self { case .universe: "global"; case .link: "link"; case .host: "host"; default: String(rawValue) }
    }
}

/// What a route does with a packet (`RTN_*`).
package struct RouteType: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    package var rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue }
    package init(integerLiteral value: UInt8) { rawValue = value }
    /// `RTN_UNICAST`: an ordinary route.
    package static let unicast = RouteType(rawValue: 1)
    /// `RTN_LOCAL`: to one of the host's own addresses.
    package static let local = RouteType(rawValue: 2)
    /// `RTN_BROADCAST`.
    package static let broadcast = RouteType(rawValue: 3)
    package var description: String {
        switch self { case .unicast: "unicast"; case .local: "local"; case .broadcast: "broadcast"; default: String(rawValue) }
    }
}

/// The kind of a link: `IFLA_INFO_KIND`, or what kvm-launch calls a link without one.
package struct LinkKind: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByStringLiteral, CustomStringConvertible {
    package var rawValue: String
    package init(rawValue: String) { self.rawValue = rawValue }
    package init(stringLiteral value: String) { rawValue = value }
    /// The loopback device (no link info, `ARPHRD_LOOPBACK`).
    package static let loopback = LinkKind(rawValue: "loopback")
    /// A device without link info and an Ethernet hardware type: a NIC.
    package static let ethernet = LinkKind(rawValue: "ethernet")
    /// A device without link info that is not Ethernet.
    package static let other = LinkKind(rawValue: "other")
    package static let veth = LinkKind(rawValue: "veth")
    package static let bridge = LinkKind(rawValue: "bridge")
    package static let macvlan = LinkKind(rawValue: "macvlan")
    package static let macvtap = LinkKind(rawValue: "macvtap")
    /// A TUN or TAP device from `/dev/net/tun`.
    package static let tun = LinkKind(rawValue: "tun")
    package var description: String { rawValue }
}

/// A link's hardware type (`ARPHRD_*`), which says what frames it carries.
package struct HardwareType: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    package var rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }
    package init(integerLiteral value: UInt32) { rawValue = value }
    /// `ARPHRD_ETHER`: Ethernet frames (veths, NICs, taps, macvlans, bridges).
    package static let ethernet = HardwareType(rawValue: 1)
    /// `ARPHRD_LOOPBACK`.
    package static let loopback = HardwareType(rawValue: 772)
    /// `ARPHRD_NONE`: no link-layer header (a TUN device, WireGuard).
    package static let none = HardwareType(rawValue: 0xFFFE)
    package var description: String {
        switch self { case .ethernet: "ether"; case .loopback: "loopback"; case .none: "none"; default: String(rawValue) }
    }
}

// Encoded as the bare number or string, as the kernel reports it.
extension RouteTable { package init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt32.self) }
    package func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) } }
extension RouteProtocol { package init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt8.self) }
    package func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) } }
extension RouteScope { package init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt8.self) }
    package func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) } }
extension RouteType { package init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt8.self) }
    package func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) } }
extension LinkKind { package init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    package func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) } }
extension HardwareType { package init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt32.self) }
    package func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) } }
