/// An IPv4 address stored in host byte order.
///
/// Parsing accepts only the dotted-quad form (`10.0.0.1`); leading zeros and
/// out-of-range octets are rejected, so `010.0.0.1` is not silently octal.
package struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    /// The address as a 32-bit number, most significant octet first.
    package var value: UInt32

    package init(_ value: UInt32) { self.value = value }

    package init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses a dotted quad; returns nil for anything else: four groups of one to three ASCII digits
    /// without a leading zero, each at most 255. Byte by byte over the UTF-8 (splitting a generic
    /// string made the runtime build metadata on first use, in every launch's start-up).
    package init?(_ text: some StringProtocol) {
        var result: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var groups = 0
        var leadingZero = false
        for byte in String(text).utf8 {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, groups < 3 else { return nil }
                result = result << 8 | octet
                groups += 1
                octet = 0
                digits = 0
                continue
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 3, !leadingZero || digits == 0 else { return nil }
            if digits == 0 { leadingZero = byte == UInt8(ascii: "0") }
            octet = octet * 10 + UInt32(byte - UInt8(ascii: "0"))
            digits += 1
            guard octet <= 255 else { return nil }
        }
        guard digits > 0, groups == 3 else { return nil }
        value = result << 8 | octet
    }

    /// The four octets in network order.
    package var octets: [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    package var description: String { octets.map(String.init).joined(separator: ".") }

    /// 127.0.0.0/8.
    package var isLoopback: Bool { value >> 24 == 127 }
    /// 169.254.0.0/16.
    package var isLinkLocal: Bool { value >> 16 == 0xA9FE }
    /// 0.0.0.0.
    package var isUnspecified: Bool { value == 0 }

    package static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }

    package init(from decoder: Decoder) throws { self = try decoder.decodeText("an IPv4 address") { IPv4Address($0) } }

    package func encode(to encoder: Encoder) throws { try encoder.encodeText(description) }
}

/// An IPv4 address with a prefix length, as assigned to an interface (`10.42.0.7/16`).
///
/// The address keeps its host bits; use ``network`` for the masked network address.
package struct IPv4Interface: Hashable, Sendable, CustomStringConvertible, Codable {
    package var address: IPv4Address
    /// 0...32.
    package var prefixLength: Int

    package init(address: IPv4Address, prefixLength: Int) {
        precondition((0...32).contains(prefixLength), "IPv4 prefix length out of range")
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `ADDR/PREFIX`; returns nil when either half is malformed.
    package init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(parts[0]),
              parts[1].allSatisfy(\.isNumber), let prefix = Int(parts[1]), (0...32).contains(prefix),
              !(parts[1].count > 1 && parts[1].first == "0") else { return nil }
        self.init(address: address, prefixLength: prefix)
    }

    /// The netmask (`255.255.0.0` for /16).
    package var netmask: IPv4Address {
        IPv4Address(prefixLength == 0 ? 0 : UInt32.max << (32 - UInt32(prefixLength)))
    }

    /// The network address (host bits cleared).
    package var network: IPv4Address { IPv4Address(address.value & netmask.value) }

    /// The directed broadcast address of the subnet.
    package var broadcast: IPv4Address { IPv4Address(network.value | ~netmask.value) }

    /// Whether `other` lies inside this subnet.
    package func contains(_ other: IPv4Address) -> Bool {
        other.value & netmask.value == network.value
    }

    package var description: String { "\(address)/\(prefixLength)" }

    package init(from decoder: Decoder) throws { self = try decoder.decodeText("ADDR/PREFIX") { IPv4Interface($0) } }

    package func encode(to encoder: Encoder) throws { try encoder.encodeText(description) }
}
