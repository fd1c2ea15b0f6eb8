/// A DHCP option code (RFC 2132 and later). Unknown codes are kept as they are.
package struct DHCPOptionCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    package var rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue }
    package init(_ rawValue: UInt8) { self.rawValue = rawValue }

    package static let pad = DHCPOptionCode(0)
    package static let subnetMask = DHCPOptionCode(1)
    package static let router = DHCPOptionCode(3)
    package static let domainNameServer = DHCPOptionCode(6)
    package static let hostName = DHCPOptionCode(12)
    package static let domainName = DHCPOptionCode(15)
    package static let interfaceMTU = DHCPOptionCode(26)
    package static let broadcastAddress = DHCPOptionCode(28)
    package static let requestedIPAddress = DHCPOptionCode(50)
    package static let leaseTime = DHCPOptionCode(51)
    package static let overload = DHCPOptionCode(52)
    package static let messageType = DHCPOptionCode(53)
    package static let serverIdentifier = DHCPOptionCode(54)
    package static let parameterRequestList = DHCPOptionCode(55)
    package static let message = DHCPOptionCode(56)
    package static let maximumMessageSize = DHCPOptionCode(57)
    package static let renewalTime = DHCPOptionCode(58)
    package static let rebindingTime = DHCPOptionCode(59)
    package static let clientIdentifier = DHCPOptionCode(61)
    package static let domainSearch = DHCPOptionCode(119)
    package static let classlessStaticRoute = DHCPOptionCode(121)
    package static let end = DHCPOptionCode(255)

    package var description: String { "option \(rawValue)" }
}

/// One option: its code and its (possibly concatenated, RFC 3396) value.
package struct DHCPOption: Sendable, Equatable {
    package var code: DHCPOptionCode
    /// The value; longer than 255 bytes is fine, encoding splits it into several instances.
    package var data: [UInt8]

    package init(_ code: DHCPOptionCode, _ data: [UInt8]) {
        self.code = code
        self.data = data
    }
}

/// The options of a message in wire order, each code at most once (repeated instances on
/// the wire are concatenated when decoding, as RFC 3396 asks).
package struct DHCPOptions: Sendable, Equatable, ExpressibleByArrayLiteral, Sequence {
    package private(set) var entries: [DHCPOption]

    package init(_ entries: [DHCPOption] = []) {
        self.entries = []
        for entry in entries { append(entry.code, entry.data) }
    }

    package init(arrayLiteral elements: DHCPOption...) { self.init(elements) }

    /// The value of `code`; setting nil removes it, setting a value replaces it in place or appends it.
    package subscript(code: DHCPOptionCode) -> [UInt8]? {
        get { entries.first { $0.code == code }?.data }
        set {
            if let index = entries.firstIndex(where: { $0.code == code }) {
                if let newValue { entries[index].data = newValue } else { entries.remove(at: index) }
            } else if let newValue {
                entries.append(DHCPOption(code, newValue))
            }
        }
    }

    /// Appends `data` to `code`'s value (creating it when absent), the RFC 3396 concatenation.
    package mutating func append(_ code: DHCPOptionCode, _ data: [UInt8]) {
        if let index = entries.firstIndex(where: { $0.code == code }) {
            entries[index].data += data
        } else {
            entries.append(DHCPOption(code, data))
        }
    }

    package var isEmpty: Bool { entries.isEmpty }
    package func makeIterator() -> IndexingIterator<[DHCPOption]> { entries.makeIterator() }
}
