import NetworkTypes

/// Wire forms of the simple option value types (RFC 2132 section 2): addresses, integers, text.
package enum DHCPOptionValue {
    package static func address(_ address: IPv4Address) -> [UInt8] { address.octets }

    package static func addresses(_ addresses: [IPv4Address]) -> [UInt8] { addresses.flatMap(\.octets) }

    package static func uint32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    package static func uint16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }

    package static func text(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// One address; nil unless exactly four bytes.
    package static func address(from data: [UInt8]) -> IPv4Address? {
        data.count == 4 ? IPv4Address(uint32(from: data)!) : nil
    }

    /// A list of addresses; nil unless a non-empty multiple of four bytes.
    package static func addresses(from data: [UInt8]) -> [IPv4Address]? {
        guard !data.isEmpty, data.count % 4 == 0 else { return nil }
        return stride(from: 0, to: data.count, by: 4).map { IPv4Address(uint32(from: Array(data[$0..<$0 + 4]))!) }
    }

    /// A 32-bit integer in network order; nil unless exactly four bytes.
    package static func uint32(from data: [UInt8]) -> UInt32? {
        guard data.count == 4 else { return nil }
        return data.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// A 16-bit integer in network order; nil unless exactly two bytes.
    package static func uint16(from data: [UInt8]) -> UInt16? {
        guard data.count == 2 else { return nil }
        return UInt16(data[0]) << 8 | UInt16(data[1])
    }
}

/// Option 121, classless static routes (RFC 3442): for each route the prefix width, then only
/// the significant octets of the destination (`ceil(width / 8)`), then the four-octet router.
package enum ClasslessRouteEncoding {
    package static func encode(_ routes: [DHCPStaticRoute]) -> [UInt8] {
        var bytes: [UInt8] = []
        for route in routes {
            let width = route.destination.prefixLength
            bytes.append(UInt8(width))
            bytes += route.destination.network.octets.prefix((width + 7) / 8)
            bytes += route.gateway.octets
        }
        return bytes
    }

    /// The routes in `data`; nil when a width exceeds 32 or a descriptor is cut short.
    package static func decode(_ data: [UInt8]) -> [DHCPStaticRoute]? {
        var routes: [DHCPStaticRoute] = []
        var index = 0
        while index < data.count {
            let width = Int(data[index])
            guard width <= 32 else { return nil }
            let significant = (width + 7) / 8
            guard index + 1 + significant + 4 <= data.count else { return nil }
            var destination: UInt32 = 0
            for octet in 0..<4 {
                let byte = octet < significant ? data[index + 1 + octet] : 0
                destination = destination << 8 | UInt32(byte)
            }
            let gatewayStart = index + 1 + significant
            let gateway = DHCPOptionValue.uint32(from: Array(data[gatewayStart..<gatewayStart + 4]))!
            let network = IPv4Interface(address: IPv4Address(destination), prefixLength: width)
            routes.append(DHCPStaticRoute(
                destination: IPv4Interface(address: network.network, prefixLength: width),
                gateway: IPv4Address(gateway)))
            index = gatewayStart + 4
        }
        return routes
    }
}

/// Option 119, the domain search list (RFC 3397): names in RFC 1035 wire form, where a name
/// may end in a two-byte pointer to an earlier occurrence of the same suffix in the option.
package enum DomainNameEncoding {
    /// The labels of `name` (a trailing dot is allowed), or nil when it is not a valid DNS name:
    /// empty labels, a label over 63 bytes, more than 255 bytes encoded, spaces or control characters.
    package static func labels(of name: String) -> [[UInt8]]? {
        var text = Substring(name)
        if text.hasSuffix(".") { text = text.dropLast() }
        guard !text.isEmpty else { return nil }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false).map { Array($0.utf8) }
        guard labels.allSatisfy({ (1...63).contains($0.count) && $0.allSatisfy { $0 > 0x20 && $0 != 0x7F } }) else {
            return nil
        }
        guard labels.reduce(1, { $0 + $1.count + 1 }) <= 255 else { return nil }
        return labels
    }

    /// Encodes `names` with compression; invalid names (see ``labels(of:)``) are skipped.
    package static func encode(_ names: [String]) -> [UInt8] {
        var bytes: [UInt8] = []
        var suffixOffsets: [[[UInt8]]: Int] = [:]
        for name in names {
            guard let labels = labels(of: name) else { continue }
            var terminated = false
            for start in labels.indices {
                let suffix = Array(labels[start...])
                if let offset = suffixOffsets[suffix] {
                    bytes += [0xC0 | UInt8(offset >> 8), UInt8(offset & 0xFF)]
                    terminated = true
                    break
                }
                if bytes.count <= 0x3FFF { suffixOffsets[suffix] = bytes.count }
                bytes.append(UInt8(labels[start].count))
                bytes += labels[start]
            }
            if !terminated { bytes.append(0) }
        }
        return bytes
    }

    /// Decodes a search list; nil when a name is cut short, a pointer does not point backwards,
    /// or a label type is reserved.
    package static func decode(_ data: [UInt8]) -> [String]? {
        var names: [String] = []
        var index = 0
        while index < data.count {
            guard let (name, next) = readName(data, at: index) else { return nil }
            names.append(name)
            index = next
        }
        return names
    }

    /// Reads one name starting at `start`; returns it and the offset after it in the stream.
    private static func readName(_ data: [UInt8], at start: Int) -> (String, Int)? {
        var labels: [String] = []
        var position = start
        var resume: Int?
        var length = 1
        while true {
            guard position < data.count else { return nil }
            let byte = data[position]
            switch byte & 0xC0 {
            case 0x00:
                if byte == 0 {
                    return (labels.joined(separator: "."), resume ?? position + 1)
                }
                let end = position + 1 + Int(byte)
                guard end <= data.count else { return nil }
                length += Int(byte) + 1
                guard length <= 255 else { return nil }
                labels.append(String(decoding: data[(position + 1)..<end], as: UTF8.self))
                position = end
            case 0xC0:
                guard position + 1 < data.count else { return nil }
                let target = Int(byte & 0x3F) << 8 | Int(data[position + 1])
                // Only backward pointers: this rules out loops.
                guard target < position else { return nil }
                if resume == nil { resume = position + 2 }
                position = target
            default:
                return nil
            }
        }
    }
}
