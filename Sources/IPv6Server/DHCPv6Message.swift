import DHCPServer
import NetworkTypes

/// DHCPv6 message types (RFC 8415 section 7.3).
package enum DHCPv6MessageType: UInt8, Sendable, CustomStringConvertible {
    case solicit = 1, advertise = 2, request = 3, confirm = 4, renew = 5, rebind = 6, reply = 7
    case release = 8, decline = 9, reconfigure = 10, informationRequest = 11, relayForward = 12, relayReply = 13

    package var description: String {
        switch self {
        case .solicit: "SOLICIT"
        case .advertise: "ADVERTISE"
        case .request: "REQUEST"
        case .confirm: "CONFIRM"
        case .renew: "RENEW"
        case .rebind: "REBIND"
        case .reply: "REPLY"
        case .release: "RELEASE"
        case .decline: "DECLINE"
        case .reconfigure: "RECONFIGURE"
        case .informationRequest: "INFORMATION-REQUEST"
        case .relayForward: "RELAY-FORW"
        case .relayReply: "RELAY-REPL"
        }
    }
}

/// The option codes this server reads or writes (RFC 8415 section 21, RFC 3646).
package enum DHCPv6OptionCode {
    package static let clientID: UInt16 = 1
    package static let serverID: UInt16 = 2
    package static let iaNA: UInt16 = 3
    package static let iaTA: UInt16 = 4
    package static let iaAddress: UInt16 = 5
    package static let optionRequest: UInt16 = 6
    package static let preference: UInt16 = 7
    package static let elapsedTime: UInt16 = 8
    package static let statusCode: UInt16 = 13
    package static let rapidCommit: UInt16 = 14
    package static let dnsServers: UInt16 = 23
    package static let domainList: UInt16 = 24
    package static let iaPD: UInt16 = 25
    package static let informationRefreshTime: UInt16 = 32
}

/// Status codes (RFC 8415 section 21.13).
package enum DHCPv6Status: UInt16, Sendable {
    case success = 0, unspecifiedFailure = 1, noAddressesAvailable = 2, noBinding = 3, notOnLink = 4
    case useMulticast = 5, noPrefixAvailable = 6
}

/// One option: code and raw data (at most 65535 bytes).
package struct DHCPv6Option: Sendable, Equatable {
    package var code: UInt16
    package var data: [UInt8]

    package init(_ code: UInt16, _ data: [UInt8]) {
        self.code = code
        self.data = data
    }

    /// Reads a sequence of options filling `bytes` exactly.
    package static func decodeAll(_ bytes: some Collection<UInt8>) throws(DHCPv6DecodingError) -> [DHCPv6Option] {
        var reader = WireReader(bytes)
        var options: [DHCPv6Option] = []
        while !reader.isAtEnd {
            guard let code = reader.uint16(), let length = reader.uint16() else { throw .truncatedOption(reader.offset) }
            guard let data = reader.bytes(Int(length)) else { throw .optionOverrun(code: code, length: Int(length)) }
            options.append(DHCPv6Option(code, data))
        }
        return options
    }

    /// The options' wire form.
    package static func encodeAll(_ options: [DHCPv6Option]) -> [UInt8] {
        var bytes: [UInt8] = []
        for option in options {
            bytes.append16(option.code)
            bytes.append16(UInt16(truncatingIfNeeded: option.data.count))
            bytes += option.data.prefix(Int(UInt16.max))
        }
        return bytes
    }
}

/// Why bytes are not a DHCPv6 client/server message.
package enum DHCPv6DecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    case tooShort(Int)
    case relayMessage
    case truncatedOption(Int)
    case optionOverrun(code: UInt16, length: Int)
    case malformedOption(code: UInt16)

    package var description: String {
        switch self {
        case .tooShort(let count): "DHCPv6 message of \(count) bytes is shorter than its 4-byte header"
        case .relayMessage: "relay agent messages are not served (the VM is on the link)"
        case .truncatedOption(let offset): "option header cut short at offset \(offset)"
        case .optionOverrun(let code, let length): "option \(code) claims \(length) bytes past the end"
        case .malformedOption(let code): "option \(code) is malformed"
        }
    }
}

/// A client/server DHCPv6 message (RFC 8415 section 8): type, 24-bit transaction ID, options.
package struct DHCPv6Message: Sendable, Equatable {
    package var type: UInt8
    package var transactionID: UInt32
    package var options: [DHCPv6Option]

    package init(type: UInt8, transactionID: UInt32, options: [DHCPv6Option]) {
        self.type = type
        self.transactionID = transactionID & 0xFF_FFFF
        self.options = options
    }

    package init(type: DHCPv6MessageType, transactionID: UInt32, options: [DHCPv6Option]) {
        self.init(type: type.rawValue, transactionID: transactionID, options: options)
    }

    /// Decodes a UDP payload. Relay messages are refused; every option must fit.
    package init(decoding bytes: some Collection<UInt8>) throws(DHCPv6DecodingError) {
        var reader = WireReader(bytes)
        guard let type = reader.uint8(), let high = reader.uint16(), let low = reader.uint8() else {
            throw .tooShort(bytes.count)
        }
        guard type != DHCPv6MessageType.relayForward.rawValue, type != DHCPv6MessageType.relayReply.rawValue else {
            throw .relayMessage
        }
        self.type = type
        transactionID = UInt32(high) << 8 | UInt32(low)
        options = try DHCPv6Option.decodeAll(reader.rest())
    }

    package func encoded() -> [UInt8] {
        var bytes: [UInt8] = [type, UInt8(transactionID >> 16 & 0xFF), UInt8(transactionID >> 8 & 0xFF), UInt8(transactionID & 0xFF)]
        bytes += DHCPv6Option.encodeAll(options)
        return bytes
    }

    package var messageType: DHCPv6MessageType? { DHCPv6MessageType(rawValue: type) }

    /// The data of every option with `code`, in order.
    package func all(_ code: UInt16) -> [[UInt8]] { options.filter { $0.code == code }.map(\.data) }

    /// The data of the first option with `code`.
    package subscript(code: UInt16) -> [UInt8]? { options.first { $0.code == code }?.data }

    package var clientID: [UInt8]? { self[DHCPv6OptionCode.clientID] }
    package var serverID: [UInt8]? { self[DHCPv6OptionCode.serverID] }
    package var hasRapidCommit: Bool { self[DHCPv6OptionCode.rapidCommit] != nil }

    /// The option codes the client asked for (option 6), empty when absent or malformed.
    package var requestedOptions: [UInt16] {
        guard let data = self[DHCPv6OptionCode.optionRequest], data.count % 2 == 0 else { return [] }
        return stride(from: 0, to: data.count, by: 2).map { UInt16(data[$0]) << 8 | UInt16(data[$0 + 1]) }
    }

    /// Every IA_NA; throws when one is malformed.
    package func identityAssociations() throws(DHCPv6DecodingError) -> [IdentityAssociation] {
        var result: [IdentityAssociation] = []
        for data in all(DHCPv6OptionCode.iaNA) { result.append(try IdentityAssociation(decoding: data)) }
        return result
    }
}

/// An IA_NA option (RFC 8415 section 21.4): IAID, T1, T2 and its own options (IA Address, status).
package struct IdentityAssociation: Sendable, Equatable {
    package var iaid: UInt32
    package var t1: UInt32
    package var t2: UInt32
    package var options: [DHCPv6Option]

    package init(iaid: UInt32, t1: UInt32, t2: UInt32, options: [DHCPv6Option]) {
        self.iaid = iaid
        self.t1 = t1
        self.t2 = t2
        self.options = options
    }

    package init(decoding data: [UInt8]) throws(DHCPv6DecodingError) {
        var reader = WireReader(data)
        guard let iaid = reader.uint32(), let t1 = reader.uint32(), let t2 = reader.uint32() else {
            throw .malformedOption(code: DHCPv6OptionCode.iaNA)
        }
        self.init(iaid: iaid, t1: t1, t2: t2, options: try DHCPv6Option.decodeAll(reader.rest()))
    }

    package var encoded: [UInt8] {
        var bytes: [UInt8] = []
        bytes.append32(iaid)
        bytes.append32(t1)
        bytes.append32(t2)
        return bytes + DHCPv6Option.encodeAll(options)
    }

    /// The IA Address options inside; malformed ones are skipped.
    package var addresses: [IAAddress] {
        options.filter { $0.code == DHCPv6OptionCode.iaAddress }.compactMap { try? IAAddress(decoding: $0.data) }
    }

    /// The status code inside, if any.
    package var status: DHCPv6Status? {
        options.first { $0.code == DHCPv6OptionCode.statusCode }.flatMap { DHCPv6StatusOption.decode($0.data) }
    }
}

/// An IA Address option (RFC 8415 section 21.6).
package struct IAAddress: Sendable, Equatable {
    package var address: IPv6Address
    package var preferredLifetime: UInt32
    package var validLifetime: UInt32

    package init(address: IPv6Address, preferredLifetime: UInt32, validLifetime: UInt32) {
        self.address = address
        self.preferredLifetime = preferredLifetime
        self.validLifetime = validLifetime
    }

    package init(decoding data: [UInt8]) throws(DHCPv6DecodingError) {
        var reader = WireReader(data)
        guard let octets = reader.bytes(16), let preferred = reader.uint32(), let valid = reader.uint32() else {
            throw .malformedOption(code: DHCPv6OptionCode.iaAddress)
        }
        self.init(address: IPv6Address(octets), preferredLifetime: preferred, validLifetime: valid)
    }

    package var option: DHCPv6Option {
        var bytes = address.octets
        bytes.append32(preferredLifetime)
        bytes.append32(validLifetime)
        return DHCPv6Option(DHCPv6OptionCode.iaAddress, bytes)
    }
}

/// Status Code option values: a code and a UTF-8 message.
package enum DHCPv6StatusOption {
    package static func option(_ status: DHCPv6Status, _ message: String) -> DHCPv6Option {
        var bytes: [UInt8] = []
        bytes.append16(status.rawValue)
        return DHCPv6Option(DHCPv6OptionCode.statusCode, bytes + Array(message.utf8))
    }

    package static func decode(_ data: [UInt8]) -> DHCPv6Status? {
        guard data.count >= 2 else { return nil }
        return DHCPv6Status(rawValue: UInt16(data[0]) << 8 | UInt16(data[1]))
    }
}

/// DNS names in option 24 form (RFC 8415 section 10: RFC 1035 labels, no compression).
package enum DomainListEncoding {
    /// The names' wire form; names that are not valid DNS names are left out.
    package static func encode(_ names: [String]) -> [UInt8] {
        var bytes: [UInt8] = []
        for name in names {
            guard let labels = DomainNameEncoding.labels(of: name) else { continue }
            for label in labels { bytes.append(UInt8(label.count)); bytes += label }
            bytes.append(0)
        }
        return bytes
    }

    /// The names in `data`; nil when a label runs past the end or a name does not end.
    package static func decode(_ data: [UInt8]) -> [String]? {
        var names: [String] = []
        var reader = WireReader(data)
        while !reader.isAtEnd {
            var labels: [String] = []
            while true {
                guard let length = reader.uint8() else { return nil }
                if length == 0 { break }
                guard length <= 63, let label = reader.bytes(Int(length)) else { return nil }
                labels.append(String(decoding: label, as: UTF8.self))
            }
            names.append(labels.joined(separator: "."))
        }
        return names
    }
}
