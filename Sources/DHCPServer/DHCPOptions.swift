/// A DHCP option code (RFC 2132 and later). Unknown codes are kept as they are.
public struct DHCPOptionCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public init(_ rawValue: UInt8) { self.rawValue = rawValue }

    public static let pad = DHCPOptionCode(0)
    public static let subnetMask = DHCPOptionCode(1)
    public static let router = DHCPOptionCode(3)
    public static let domainNameServer = DHCPOptionCode(6)
    public static let hostName = DHCPOptionCode(12)
    public static let domainName = DHCPOptionCode(15)
    public static let interfaceMTU = DHCPOptionCode(26)
    public static let broadcastAddress = DHCPOptionCode(28)
    public static let requestedIPAddress = DHCPOptionCode(50)
    public static let leaseTime = DHCPOptionCode(51)
    public static let overload = DHCPOptionCode(52)
    public static let messageType = DHCPOptionCode(53)
    public static let serverIdentifier = DHCPOptionCode(54)
    public static let parameterRequestList = DHCPOptionCode(55)
    public static let message = DHCPOptionCode(56)
    public static let maximumMessageSize = DHCPOptionCode(57)
    public static let renewalTime = DHCPOptionCode(58)
    public static let rebindingTime = DHCPOptionCode(59)
    public static let clientIdentifier = DHCPOptionCode(61)
    public static let domainSearch = DHCPOptionCode(119)
    public static let classlessStaticRoute = DHCPOptionCode(121)
    public static let end = DHCPOptionCode(255)

    public var description: String { "option \(rawValue)" }
}

/// One option: its code and its (possibly concatenated, RFC 3396) value.
public struct DHCPOption: Sendable, Equatable {
    public var code: DHCPOptionCode
    /// The value; longer than 255 bytes is fine, encoding splits it into several instances.
    public var data: [UInt8]

    public init(_ code: DHCPOptionCode, _ data: [UInt8]) {
        self.code = code
        self.data = data
    }
}

/// The options of a message in wire order, each code at most once (repeated instances on
/// the wire are concatenated when decoding, as RFC 3396 asks).
public struct DHCPOptions: Sendable, Equatable, ExpressibleByArrayLiteral, Sequence {
    public private(set) var entries: [DHCPOption]

    public init(_ entries: [DHCPOption] = []) {
        self.entries = []
        for entry in entries { append(entry.code, entry.data) }
    }

    public init(arrayLiteral elements: DHCPOption...) { self.init(elements) }

    /// The value of `code`; setting nil removes it, setting a value replaces it in place or appends it.
    public subscript(code: DHCPOptionCode) -> [UInt8]? {
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
    public mutating func append(_ code: DHCPOptionCode, _ data: [UInt8]) {
        if let index = entries.firstIndex(where: { $0.code == code }) {
            entries[index].data += data
        } else {
            entries.append(DHCPOption(code, data))
        }
    }

    public var isEmpty: Bool { entries.isEmpty }
    public func makeIterator() -> IndexingIterator<[DHCPOption]> { entries.makeIterator() }
}
