import NetworkTypes

/// ICMPv6 messages of Neighbor Discovery (RFC 4861) that the advertiser reads or writes.
package enum ICMPv6Type {
    package static let routerSolicitation: UInt8 = 133
    package static let routerAdvertisement: UInt8 = 134
    package static let neighborSolicitation: UInt8 = 135
    package static let neighborAdvertisement: UInt8 = 136
    package static let echoRequest: UInt8 = 128
    package static let echoReply: UInt8 = 129
}

/// One Neighbor Discovery option: type and the data after the two-byte header; its wire length
/// is a multiple of eight bytes (RFC 4861 section 4.6).
package struct NDOption: Sendable, Equatable {
    package static let sourceLinkLayerAddress: UInt8 = 1
    package static let targetLinkLayerAddress: UInt8 = 2
    package static let prefixInformation: UInt8 = 3
    package static let mtu: UInt8 = 5

    package var type: UInt8
    package var data: [UInt8]

    package init(type: UInt8, data: [UInt8]) {
        self.type = type
        self.data = data
    }

    /// Options filling `bytes`; nil when one has length zero or runs past the end.
    package static func decodeAll(_ bytes: some Collection<UInt8>) -> [NDOption]? {
        var reader = WireReader(bytes)
        var options: [NDOption] = []
        while !reader.isAtEnd {
            guard let type = reader.uint8(), let units = reader.uint8(), units > 0,
                  let data = reader.bytes(Int(units) * 8 - 2) else { return nil }
            options.append(NDOption(type: type, data: data))
        }
        return options
    }

    /// The option's wire form, zero-padded to a multiple of eight bytes.
    package var encoded: [UInt8] {
        let total = (data.count + 2 + 7) / 8 * 8
        return [type, UInt8(truncatingIfNeeded: total / 8)] + data + Array(repeating: 0, count: total - 2 - data.count)
    }
}

/// A Router Solicitation (RFC 4861 section 4.1), validated as section 6.1.1 asks.
package struct RouterSolicitation: Sendable, Equatable {
    /// The sender's link-layer address (option 1), if it sent one.
    package var sourceLinkLayerAddress: MACAddress?

    /// Why an ICMPv6 message is not a valid Router Solicitation.
    package enum Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        case notASolicitation(type: UInt8, code: UInt8)
        case tooShort(Int)
        case hopLimit(UInt8)
        case badOptions
        case linkLayerAddressFromUnspecified

        package var description: String {
            switch self {
            case .notASolicitation(let type, let code): "ICMPv6 type \(type) code \(code) is not a Router Solicitation"
            case .tooShort(let count): "Router Solicitation of \(count) bytes is shorter than 8"
            case .hopLimit(let limit): "Router Solicitation with hop limit \(limit), not 255 (it was routed)"
            case .badOptions: "Router Solicitation options have length zero or run past the end"
            case .linkLayerAddressFromUnspecified: "Router Solicitation from :: carries a link-layer address option"
            }
        }
    }

    /// Reads the ICMPv6 message (checksum already verified) of a packet with `hopLimit` from `source`.
    package init(decoding message: [UInt8], hopLimit: UInt8, source: IPv6Address) throws(Invalid) {
        guard message.count >= 2, message[0] == ICMPv6Type.routerSolicitation, message[1] == 0 else {
            throw .notASolicitation(type: message.first ?? 0, code: message.count > 1 ? message[1] : 0)
        }
        guard message.count >= 8 else { throw .tooShort(message.count) }
        guard hopLimit == 255 else { throw .hopLimit(hopLimit) }
        guard let options = NDOption.decodeAll(message[8...]) else { throw .badOptions }
        let link = options.first { $0.type == NDOption.sourceLinkLayerAddress }
        if link != nil, source.isUnspecified { throw .linkLayerAddressFromUnspecified }
        sourceLinkLayerAddress = link.flatMap { $0.data.count >= 6 ? MACAddress(Array($0.data.prefix(6))) : nil }
    }
}

/// A Router Advertisement (RFC 4861 section 4.2) as the advertiser sends it: managed (M) and
/// other-configuration (O) flags set, one Prefix Information option per prefix with on-link (L)
/// set and autonomous (A) clear, so the VM configures only the address DHCPv6 gives it.
package struct RouterAdvertisement: Sendable, Equatable {
    package var curHopLimit: UInt8 = 64
    package var managed = true
    package var otherConfiguration = true
    /// Seconds the sender is a default router; 0 says "not a default router".
    package var routerLifetime: UInt16
    /// On-link prefixes (host bits of each are cleared on the wire).
    package var prefixes: [IPv6Interface]
    package var prefixValidLifetime: UInt32 = .max
    package var prefixPreferredLifetime: UInt32 = .max
    package var mtu: UInt32?
    /// Option 1; nil when the advertised router is another node that answers Neighbor Discovery itself.
    package var sourceLinkLayerAddress: MACAddress?

    package init(routerLifetime: UInt16, prefixes: [IPv6Interface], mtu: UInt32? = nil, sourceLinkLayerAddress: MACAddress? = nil) {
        self.routerLifetime = routerLifetime
        self.prefixes = prefixes
        self.mtu = mtu
        self.sourceLinkLayerAddress = sourceLinkLayerAddress
    }

    /// The ICMPv6 message with a zero checksum (the frame builder fills it in).
    package var encoded: [UInt8] {
        var bytes: [UInt8] = [ICMPv6Type.routerAdvertisement, 0, 0, 0, curHopLimit,
                              (managed ? 0x80 : 0) | (otherConfiguration ? 0x40 : 0)]
        bytes.append16(routerLifetime)
        bytes.append32(0)  // reachable time: unspecified
        bytes.append32(0)  // retrans timer: unspecified
        if let mac = sourceLinkLayerAddress { bytes += NDOption(type: NDOption.sourceLinkLayerAddress, data: mac.octets).encoded }
        if let mtu {
            var data: [UInt8] = [0, 0]
            data.append32(mtu)
            bytes += NDOption(type: NDOption.mtu, data: data).encoded
        }
        for prefix in prefixes {
            var data: [UInt8] = [UInt8(prefix.prefixLength), 0x80]  // L=1, A=0
            data.append32(prefixValidLifetime)
            data.append32(prefixPreferredLifetime)
            data.append32(0)
            data += IPv6Interface(address: prefix.network, prefixLength: prefix.prefixLength).address.octets
            bytes += NDOption(type: NDOption.prefixInformation, data: data).encoded
        }
        return bytes
    }

    /// Reads an RA message (for tests and captures); nil when it is not one or is malformed.
    package init?(decoding message: [UInt8]) {
        var reader = WireReader(message)
        guard reader.uint8() == ICMPv6Type.routerAdvertisement, reader.uint8() == 0, reader.uint16() != nil,
              let hopLimit = reader.uint8(), let flags = reader.uint8(), let lifetime = reader.uint16(),
              reader.uint32() != nil, reader.uint32() != nil, let options = NDOption.decodeAll(reader.rest()) else { return nil }
        curHopLimit = hopLimit
        managed = flags & 0x80 != 0
        otherConfiguration = flags & 0x40 != 0
        routerLifetime = lifetime
        prefixes = []
        for option in options {
            switch option.type {
            case NDOption.sourceLinkLayerAddress where option.data.count >= 6:
                sourceLinkLayerAddress = MACAddress(Array(option.data.prefix(6)))
            case NDOption.mtu where option.data.count == 6:
                var value = WireReader(option.data.suffix(4))
                mtu = value.uint32()
            case NDOption.prefixInformation where option.data.count == 30:
                var prefix = WireReader(option.data)
                guard let length = prefix.uint8(), length <= 128, let flags = prefix.uint8(),
                      let valid = prefix.uint32(), let preferred = prefix.uint32(), prefix.uint32() != nil,
                      let address = prefix.bytes(16) else { return nil }
                // Only A=0 prefixes can be represented; report others as not ours.
                guard flags & 0x40 == 0 else { return nil }
                prefixValidLifetime = valid
                prefixPreferredLifetime = preferred
                prefixes.append(IPv6Interface(address: IPv6Address(address), prefixLength: Int(length)))
            default:
                continue
            }
        }
    }
}
