/// Named values for the numbers netlink records carry (`<linux/rtnetlink.h>`, `<linux/if_arp.h>`),
/// so code says `.main` and `.link` instead of 254 and 253.
///
/// Each is a thin wrapper around the kernel's number: values kvm-launch does not name still
/// round-trip unchanged. Integer literals convert, for tests and fixtures.

/// A routing table (`RT_TABLE_*`).
public struct RouteTable: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt32) { rawValue = value }
    /// `RT_TABLE_MAIN`: where `ip route` adds by default.
    public static let main = RouteTable(rawValue: 254)
    /// `RT_TABLE_LOCAL`: the kernel's routes to local and broadcast addresses.
    public static let local = RouteTable(rawValue: 255)
    public var description: String {
        switch self { case .main: "main"; case .local: "local"; default: String(rawValue) }
    }
}

/// Who installed a route (`RTPROT_*`).
public struct RouteProtocol: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt8) { rawValue = value }
    /// `RTPROT_KERNEL`: made by the kernel for an address (the connected route).
    public static let kernel = RouteProtocol(rawValue: 2)
    /// `RTPROT_BOOT`: added by hand or by a tool (`ip route add`'s default).
    public static let boot = RouteProtocol(rawValue: 3)
    /// `RTPROT_STATIC`: added by an administrator.
    public static let `static` = RouteProtocol(rawValue: 4)
    /// `RTPROT_DHCP`: added by a DHCP client.
    public static let dhcp = RouteProtocol(rawValue: 16)
    public var description: String {
        switch self { case .kernel: "kernel"; case .boot: "boot"; case .static: "static"; case .dhcp: "dhcp"; default: String(rawValue) }
    }
}

/// How far a route or an address reaches (`RT_SCOPE_*`); larger is narrower.
public struct RouteScope: RawRepresentable, Hashable, Comparable, Sendable, Codable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt8) { rawValue = value }
    /// `RT_SCOPE_UNIVERSE`: through a gateway, or anywhere.
    public static let universe = RouteScope(rawValue: 0)
    /// `RT_SCOPE_LINK`: directly on the link (no gateway).
    public static let link = RouteScope(rawValue: 253)
    /// `RT_SCOPE_HOST`: this host only.
    public static let host = RouteScope(rawValue: 254)
    public static func < (lhs: RouteScope, rhs: RouteScope) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String {
        switch self { case .universe: "global"; case .link: "link"; case .host: "host"; default: String(rawValue) }
    }
}

/// What a route does with a packet (`RTN_*`).
public struct RouteType: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt8) { rawValue = value }
    /// `RTN_UNICAST`: an ordinary route.
    public static let unicast = RouteType(rawValue: 1)
    /// `RTN_LOCAL`: to one of the host's own addresses.
    public static let local = RouteType(rawValue: 2)
    /// `RTN_BROADCAST`.
    public static let broadcast = RouteType(rawValue: 3)
    public var description: String {
        switch self { case .unicast: "unicast"; case .local: "local"; case .broadcast: "broadcast"; default: String(rawValue) }
    }
}

/// The kind of a link: `IFLA_INFO_KIND`, or what kvm-launch calls a link without one.
public struct LinkKind: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { rawValue = value }
    /// The loopback device (no link info, `ARPHRD_LOOPBACK`).
    public static let loopback = LinkKind(rawValue: "loopback")
    /// A device without link info and an Ethernet hardware type: a NIC.
    public static let ethernet = LinkKind(rawValue: "ethernet")
    /// A device without link info that is not Ethernet.
    public static let other = LinkKind(rawValue: "other")
    public static let veth = LinkKind(rawValue: "veth")
    public static let bridge = LinkKind(rawValue: "bridge")
    public static let macvlan = LinkKind(rawValue: "macvlan")
    public static let macvtap = LinkKind(rawValue: "macvtap")
    /// A TUN or TAP device from `/dev/net/tun`.
    public static let tun = LinkKind(rawValue: "tun")
    public var description: String { rawValue }
}

/// A link's hardware type (`ARPHRD_*`), which says what frames it carries.
public struct HardwareType: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt32) { rawValue = value }
    /// `ARPHRD_ETHER`: Ethernet frames (veths, NICs, taps, macvlans, bridges).
    public static let ethernet = HardwareType(rawValue: 1)
    /// `ARPHRD_LOOPBACK`.
    public static let loopback = HardwareType(rawValue: 772)
    /// `ARPHRD_NONE`: no link-layer header (a TUN device, WireGuard).
    public static let none = HardwareType(rawValue: 0xFFFE)
    public var description: String {
        switch self { case .ethernet: "ether"; case .loopback: "loopback"; case .none: "none"; default: String(rawValue) }
    }
}

// Encoded as the bare number or string, as the kernel reports it.
extension RouteTable { public init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt32.self) }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) } }
extension RouteProtocol { public init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt8.self) }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) } }
extension RouteScope { public init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt8.self) }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) } }
extension RouteType { public init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt8.self) }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) } }
extension LinkKind { public init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) } }
extension HardwareType { public init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt32.self) }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) } }
