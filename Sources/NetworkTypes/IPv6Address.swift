/// A 128-bit IPv6 address, sixteen octets in network order.
///
/// Parsing accepts RFC 4291 text (`fd00::1`, `fe80::ecee:eeff:feee:eeee`, `::ffff:10.0.0.1`) and
/// nothing else: no zone (`%eth0`), no brackets, at most four hex digits per group. Printing
/// follows RFC 5952 (lower case, longest run of zero groups shortened to `::`).
package struct IPv6Address: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    /// The sixteen octets.
    package let octets: [UInt8]

    /// `bytes` must hold exactly sixteen octets.
    package init(_ bytes: [UInt8]) {
        precondition(bytes.count == 16, "an IPv6 address has sixteen octets")
        octets = bytes
    }

    /// Sixteen octets from `bytes`, or nil when there are not exactly sixteen.
    package init?(octets bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        octets = Array(bytes)
    }

    /// Parses RFC 4291 text; nil for anything else.
    package init?(_ text: some StringProtocol) {
        let text = String(text)
        guard !text.isEmpty, text.utf8.count <= 45, text.allSatisfy(\.isASCII) else { return nil }
        // Split at "::" (at most one).
        var halves: [String] = []
        let characters = Array(text)
        var current = "", index = 0
        while index < characters.count {
            if characters[index] == ":", index + 1 < characters.count, characters[index + 1] == ":" {
                halves.append(current)
                current = ""
                index += 2
            } else {
                current.append(characters[index])
                index += 1
            }
        }
        halves.append(current)
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String, allowIPv4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            var result: [UInt16] = []
            for (index, piece) in pieces.enumerated() {
                if allowIPv4Tail, index == pieces.count - 1, piece.contains(".") {
                    guard let v4 = IPv4Address(piece) else { return nil }
                    result += [UInt16(v4.value >> 16), UInt16(v4.value & 0xFFFF)]
                } else {
                    guard (1...4).contains(piece.count), piece.allSatisfy(\.isHexDigit),
                          let group = UInt16(piece, radix: 16) else { return nil }
                    result.append(group)
                }
            }
            return result
        }
        var all: [UInt16]
        if halves.count == 2 {
            guard let head = groups(halves[0], allowIPv4Tail: false),
                  let tail = groups(halves[1], allowIPv4Tail: true), head.count + tail.count <= 7 else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let only = groups(text, allowIPv4Tail: true), only.count == 8 else { return nil }
            all = only
        }
        octets = all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// The eight 16-bit groups.
    package var groups: [UInt16] {
        stride(from: 0, to: 16, by: 2).map { UInt16(octets[$0]) << 8 | UInt16(octets[$0 + 1]) }
    }

    /// RFC 5952 text.
    package var description: String {
        let groups = groups
        // The longest run of two or more zero groups (the first one on a tie) becomes "::".
        var bestStart = -1, bestLength = 0, index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            var end = index
            while end < 8, groups[end] == 0 { end += 1 }
            if end - index > bestLength, end - index >= 2 { bestStart = index; bestLength = end - index }
            index = end
        }
        let hex = { (group: UInt16) in String(group, radix: 16) }
        guard bestStart >= 0 else { return groups.map(hex).joined(separator: ":") }
        let head = groups[..<bestStart].map(hex).joined(separator: ":")
        let tail = groups[(bestStart + bestLength)...].map(hex).joined(separator: ":")
        return head + "::" + tail
    }

    /// `::`.
    package static let unspecified = IPv6Address(Array(repeating: 0, count: 16))
    /// `ff02::1`, all nodes on the link.
    package static let allNodes = IPv6Address("ff02::1")!
    /// `ff02::2`, all routers on the link.
    package static let allRouters = IPv6Address("ff02::2")!
    /// `ff02::1:2`, all DHCPv6 relay agents and servers.
    package static let allDHCPServersAndRelays = IPv6Address("ff02::1:2")!

    package var isUnspecified: Bool { octets.allSatisfy { $0 == 0 } }
    /// `::1`.
    package var isLoopback: Bool { octets.dropLast().allSatisfy { $0 == 0 } && octets[15] == 1 }
    /// `ff00::/8`.
    package var isMulticast: Bool { octets[0] == 0xFF }
    /// `fe80::/10`.
    package var isLinkLocal: Bool { octets[0] == 0xFE && octets[1] & 0xC0 == 0x80 }
    /// Neither unspecified, loopback, multicast, link-local nor IPv4-mapped: an address that can
    /// be reached beyond the link (global unicast or unique local).
    package var isGlobalUnicast: Bool {
        !isUnspecified && !isLoopback && !isMulticast && !isLinkLocal && !isIPv4Mapped
    }
    /// `::ffff:0:0/96`.
    package var isIPv4Mapped: Bool { octets[0..<10].allSatisfy { $0 == 0 } && octets[10] == 0xFF && octets[11] == 0xFF }

    /// The modified EUI-64 link-local address a kernel makes from `mac` (RFC 4291 appendix A).
    package static func linkLocal(eui64 mac: MACAddress) -> IPv6Address {
        let m = mac.octets
        return IPv6Address([0xFE, 0x80, 0, 0, 0, 0, 0, 0, m[0] ^ 0x02, m[1], m[2], 0xFF, 0xFE, m[3], m[4], m[5]])
    }

    /// The Ethernet group address a multicast IPv6 address maps to (RFC 2464: 33:33 and the low 32 bits).
    package var multicastMAC: MACAddress {
        MACAddress([0x33, 0x33] + octets[12..<16])
    }

    package static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool { lhs.octets.lexicographicallyPrecedes(rhs.octets) }

    package init(from decoder: Decoder) throws { self = try decoder.decodeText("an IPv6 address") { IPv6Address($0) } }

    package func encode(to encoder: Encoder) throws { try encoder.encodeText(description) }
}

/// An IPv6 address with a prefix length, as assigned to an interface (`fd00:1::5/64`).
package struct IPv6Interface: Hashable, Sendable, CustomStringConvertible, Codable {
    package var address: IPv6Address
    /// 0...128.
    package var prefixLength: Int

    package init(address: IPv6Address, prefixLength: Int) {
        precondition((0...128).contains(prefixLength), "IPv6 prefix length out of range")
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `ADDR/PREFIX`; nil when either half is malformed.
    package init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv6Address(parts[0]), !parts[1].isEmpty, parts[1].count <= 3,
              parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let prefix = Int(parts[1]), (0...128).contains(prefix),
              !(parts[1].count > 1 && parts[1].first == "0") else { return nil }
        self.init(address: address, prefixLength: prefix)
    }

    /// The network address (host bits cleared).
    package var network: IPv6Address {
        var bytes = address.octets
        for index in 0..<16 {
            let keep = max(0, min(8, prefixLength - index * 8))
            bytes[index] &= keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
        }
        return IPv6Address(bytes)
    }

    /// Whether `other` lies inside this prefix.
    package func contains(_ other: IPv6Address) -> Bool {
        IPv6Interface(address: other, prefixLength: prefixLength).network == network
    }

    package var description: String { "\(address)/\(prefixLength)" }

    package init(from decoder: Decoder) throws { self = try decoder.decodeText("ADDR/PREFIX") { IPv6Interface($0) } }

    package func encode(to encoder: Encoder) throws { try encoder.encodeText(description) }
}
