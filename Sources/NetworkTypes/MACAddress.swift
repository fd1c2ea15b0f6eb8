/// A 48-bit Ethernet MAC address.
package struct MACAddress: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The six octets in transmission order.
    package var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    package init(_ bytes: [UInt8]) {
        precondition(bytes.count == 6, "a MAC address has six octets")
        self.bytes = (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5])
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (also with `-`); returns nil for anything else.
    package init?(_ text: some StringProtocol) {
        let separator: Character = text.contains("-") ? "-" : ":"
        let parts = text.split(separator: separator, omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var octets: [UInt8] = []
        for part in parts {
            guard part.count == 2, let octet = UInt8(part, radix: 16) else { return nil }
            octets.append(octet)
        }
        self.init(octets)
    }

    package var octets: [UInt8] { [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5] }

    /// Lower-case, colon-separated.
    package var description: String {
        octets.map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined(separator: ":")
    }

    /// The group bit (I/G) is set: multicast or broadcast.
    package var isMulticast: Bool { bytes.0 & 0x01 != 0 }
    /// The locally-administered bit (U/L) is set.
    package var isLocallyAdministered: Bool { bytes.0 & 0x02 != 0 }
    /// All zeros.
    package var isZero: Bool { octets.allSatisfy { $0 == 0 } }

    /// A random locally-administered unicast address.
    package static func randomLocal<G: RandomNumberGenerator>(using generator: inout G) -> MACAddress {
        var octets = (0..<6).map { _ in UInt8.random(in: 0...255, using: &generator) }
        octets[0] = (octets[0] & 0xFC) | 0x02
        return MACAddress(octets)
    }

    /// A random locally-administered unicast address from the system generator.
    package static func randomLocal() -> MACAddress {
        var generator = SystemRandomNumberGenerator()
        return randomLocal(using: &generator)
    }

    package static func == (lhs: MACAddress, rhs: MACAddress) -> Bool { lhs.octets == rhs.octets }
    package func hash(into hasher: inout Hasher) { hasher.combine(octets) }

    package init(from decoder: Decoder) throws { self = try decoder.decodeText("a MAC address") { MACAddress($0) } }

    package func encode(to encoder: Encoder) throws { try encoder.encodeText(description) }
}
