/// A 48-bit Ethernet MAC address.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The six octets in transmission order.
    public var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    public init(_ bytes: [UInt8]) {
        precondition(bytes.count == 6, "a MAC address has six octets")
        self.bytes = (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5])
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (also with `-`); returns nil for anything else.
    public init?(_ text: some StringProtocol) {
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

    public var octets: [UInt8] { [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5] }

    /// Lower-case, colon-separated.
    public var description: String {
        octets.map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined(separator: ":")
    }

    /// The group bit (I/G) is set: multicast or broadcast.
    public var isMulticast: Bool { bytes.0 & 0x01 != 0 }
    /// The locally-administered bit (U/L) is set.
    public var isLocallyAdministered: Bool { bytes.0 & 0x02 != 0 }
    /// All zeros.
    public var isZero: Bool { octets.allSatisfy { $0 == 0 } }

    /// A random locally-administered unicast address.
    public static func randomLocal<G: RandomNumberGenerator>(using generator: inout G) -> MACAddress {
        var octets = (0..<6).map { _ in UInt8.random(in: 0...255, using: &generator) }
        octets[0] = (octets[0] & 0xFC) | 0x02
        return MACAddress(octets)
    }

    /// A random locally-administered unicast address from the system generator.
    public static func randomLocal() -> MACAddress {
        var generator = SystemRandomNumberGenerator()
        return randomLocal(using: &generator)
    }

    public static func == (lhs: MACAddress, rhs: MACAddress) -> Bool { lhs.octets == rhs.octets }
    public func hash(into hasher: inout Hasher) { hasher.combine(octets) }

    public init(from decoder: Decoder) throws { self = try decoder.decodeText("a MAC address") { MACAddress($0) } }

    public func encode(to encoder: Encoder) throws { try encoder.encodeText(description) }
}
