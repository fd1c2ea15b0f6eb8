/// An IPv4 or an IPv6 address: what a netlink address or route record holds.
package enum IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// Parses dotted IPv4 or IPv6 text; nil when it is neither.
    package init?(_ text: some StringProtocol) {
        if let address = IPv4Address(text) {
            self = .v4(address)
        } else if let address = IPv6Address(text) {
            self = .v6(address)
        } else {
            return nil
        }
    }

    /// From network-order bytes: 4 make an IPv4 address, 16 an IPv6 one; nil for any other count.
    package init?(octets: some Collection<UInt8>) {
        let bytes = Array(octets)
        switch bytes.count {
        case 4: self = .v4(IPv4Address(bytes[0], bytes[1], bytes[2], bytes[3]))
        case 16: self = .v6(IPv6Address(bytes))
        default: return nil
        }
    }

    /// `0.0.0.0` and `::`, the destination of a default route.
    package static let anyIPv4 = IPAddress.v4(IPv4Address(0))
    package static let anyIPv6 = IPAddress.v6(.unspecified)

    package var ipv4: IPv4Address? {
        if case .v4(let address) = self { address } else { nil }
    }

    package var ipv6: IPv6Address? {
        if case .v6(let address) = self { address } else { nil }
    }

    /// The address in network order (4 or 16 bytes).
    package var octets: [UInt8] {
        switch self {
        case .v4(let address): address.octets
        case .v6(let address): address.octets
        }
    }

    package var description: String {
        switch self {
        case .v4(let address): address.description
        case .v6(let address): address.description
        }
    }

    /// IPv4 before IPv6; within a family, numerically.
    package static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        switch (lhs, rhs) {
        case let (.v4(a), .v4(b)): a < b
        case let (.v6(a), .v6(b)): a < b
        case (.v4, .v6): true
        case (.v6, .v4): false
        }
    }

    /// Encoded as its text, like ``IPv4Address`` and ``IPv6Address``.
    package init(from decoder: Decoder) throws { self = try decoder.decodeText("an IP address") { IPAddress($0) } }

    package func encode(to encoder: Encoder) throws { try encoder.encodeText(description) }
}
