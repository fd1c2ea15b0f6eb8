import NetworkTypes

/// The DHCP message type, option 53 (RFC 2132 section 9.6).
package enum DHCPMessageType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case discover = 1, offer, request, decline, ack, nak, release, inform

    package var description: String {
        switch self {
        case .discover: "DHCPDISCOVER"
        case .offer: "DHCPOFFER"
        case .request: "DHCPREQUEST"
        case .decline: "DHCPDECLINE"
        case .ack: "DHCPACK"
        case .nak: "DHCPNAK"
        case .release: "DHCPRELEASE"
        case .inform: "DHCPINFORM"
        }
    }
}

/// A BOOTP/DHCP message (RFC 2131 section 2, RFC 951): the fixed header, the magic cookie and
/// the options. A pure value: ``init(decoding:)`` parses, ``encoded()`` serialises.
///
/// Decoding concatenates repeated options (RFC 3396) and honours option overload (52): the
/// options found in `file`/`sname` are merged into ``options``, option 52 is dropped and the
/// overloaded fields are left empty, so the value reads the same however the sender packed it.
package struct DHCPMessage: Sendable, Equatable {
    /// BOOTREQUEST (client to server) or BOOTREPLY.
    package enum Operation: UInt8, Sendable { case request = 1, reply = 2 }

    /// Length of the fixed BOOTP header before the magic cookie.
    package static let headerLength = 236
    /// The four bytes 99.130.83.99 that start the options field.
    package static let magicCookie: [UInt8] = [99, 130, 83, 99]
    /// Replies are padded to this size: the BOOTP minimum some relays and old clients expect (RFC 1542).
    package static let minimumEncodedLength = 300
    /// The broadcast bit of ``flags`` (RFC 2131 figure 2).
    package static let broadcastFlag: UInt16 = 0x8000

    package var op: Operation
    /// Hardware address type; 1 is Ethernet.
    package var htype: UInt8
    /// Hardware address length; 6 for Ethernet.
    package var hlen: UInt8
    package var hops: UInt8
    /// Transaction ID chosen by the client.
    package var xid: UInt32
    package var secs: UInt16
    package var flags: UInt16
    package var ciaddr: IPv4Address
    package var yiaddr: IPv4Address
    package var siaddr: IPv4Address
    package var giaddr: IPv4Address
    /// The 16-byte client hardware address field (the MAC is its first `hlen` bytes).
    package var chaddr: [UInt8]
    /// Server host name field without its trailing zero padding (64 bytes on the wire).
    package var sname: [UInt8]
    /// Boot file name field without its trailing zero padding (128 bytes on the wire).
    package var file: [UInt8]
    package var options: DHCPOptions

    package init(
        op: Operation,
        htype: UInt8 = 1,
        hlen: UInt8 = 6,
        hops: UInt8 = 0,
        xid: UInt32,
        secs: UInt16 = 0,
        flags: UInt16 = 0,
        ciaddr: IPv4Address = IPv4Address(0),
        yiaddr: IPv4Address = IPv4Address(0),
        siaddr: IPv4Address = IPv4Address(0),
        giaddr: IPv4Address = IPv4Address(0),
        chaddr: [UInt8],
        sname: [UInt8] = [],
        file: [UInt8] = [],
        options: DHCPOptions = []
    ) {
        self.op = op
        self.htype = htype
        self.hlen = hlen
        self.hops = hops
        self.xid = xid
        self.secs = secs
        self.flags = flags
        self.ciaddr = ciaddr
        self.yiaddr = yiaddr
        self.siaddr = siaddr
        self.giaddr = giaddr
        self.chaddr = Array((chaddr + Array(repeating: 0, count: 16)).prefix(16))
        self.sname = sname
        self.file = file
        self.options = options
    }

    /// An Ethernet message whose `chaddr` holds `mac`.
    package init(op: Operation, xid: UInt32, clientMAC mac: MACAddress, options: DHCPOptions = []) {
        self.init(op: op, xid: xid, chaddr: mac.octets, options: options)
    }

    // MARK: Decoding

    /// Parses a message as received in a UDP payload.
    package init(decoding bytes: some Collection<UInt8>) throws(DHCPDecodingError) {
        let data = Array(bytes)
        guard data.count >= Self.headerLength + Self.magicCookie.count else {
            throw .tooShort(length: data.count)
        }
        guard let op = Operation(rawValue: data[0]) else { throw .invalidOperation(data[0]) }
        guard data[2] <= 16 else { throw .invalidHardwareAddressLength(data[2]) }
        guard Array(data[236..<240]) == Self.magicCookie else { throw .missingMagicCookie }

        func word(_ at: Int) -> UInt32 { data[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) } }
        func trimmed(_ range: Range<Int>) -> [UInt8] {
            let field = data[range]
            guard let last = field.lastIndex(where: { $0 != 0 }) else { return [] }
            return Array(field[..<(last + 1)])
        }

        var options = DHCPOptions()
        try Self.parseOptions(data[240...], into: &options, field: "options")
        var sname = trimmed(44..<108)
        var file = trimmed(108..<236)
        if let overload = options[.overload] {
            guard overload.count == 1, (1...3).contains(overload[0]) else {
                throw .invalidOverload(overload.first ?? 0)
            }
            options[.overload] = nil
            // RFC 3396 section 6: options, then file, then sname.
            if overload[0] & 1 != 0 {
                try Self.parseOptions(data[108..<236], into: &options, field: "file")
                file = []
            }
            if overload[0] & 2 != 0 {
                try Self.parseOptions(data[44..<108], into: &options, field: "sname")
                sname = []
            }
        }

        self.op = op
        htype = data[1]
        hlen = data[2]
        hops = data[3]
        xid = word(4)
        secs = UInt16(data[8]) << 8 | UInt16(data[9])
        flags = UInt16(data[10]) << 8 | UInt16(data[11])
        ciaddr = IPv4Address(word(12))
        yiaddr = IPv4Address(word(16))
        siaddr = IPv4Address(word(20))
        giaddr = IPv4Address(word(24))
        chaddr = Array(data[28..<44])
        self.sname = sname
        self.file = file
        self.options = options
    }

    /// Reads pad/end/TLV options from `area`, appending (RFC 3396 concatenation) into `options`.
    /// A missing end option is tolerated; an option running past the area is not.
    private static func parseOptions(
        _ area: ArraySlice<UInt8>, into options: inout DHCPOptions, field: String
    ) throws(DHCPDecodingError) {
        var index = area.startIndex
        while index < area.endIndex {
            let code = area[index]
            if code == DHCPOptionCode.end.rawValue { return }
            if code == DHCPOptionCode.pad.rawValue {
                index += 1
                continue
            }
            guard index + 1 < area.endIndex else { throw .truncatedOption(code: code, field: field) }
            let length = Int(area[index + 1])
            let start = index + 2
            guard start + length <= area.endIndex else { throw .truncatedOption(code: code, field: field) }
            options.append(DHCPOptionCode(code), Array(area[start..<start + length]))
            index = start + length
        }
    }

    // MARK: Encoding

    /// The wire form: header, cookie, options (values over 255 bytes split into several
    /// instances), end option, zero padding up to ``minimumEncodedLength``.
    package func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.minimumEncodedLength + 64)
        bytes += [op.rawValue, htype, hlen, hops]
        bytes += DHCPOptionValue.uint32(xid)
        bytes += DHCPOptionValue.uint16(secs)
        bytes += DHCPOptionValue.uint16(flags)
        for address in [ciaddr, yiaddr, siaddr, giaddr] { bytes += address.octets }
        bytes += Self.field(chaddr, length: 16)
        bytes += Self.field(sname, length: 64)
        bytes += Self.field(file, length: 128)
        bytes += Self.magicCookie
        for option in options where option.code != .pad && option.code != .end {
            var rest = option.data[...]
            repeat {
                let chunk = rest.prefix(255)
                bytes += [option.code.rawValue, UInt8(chunk.count)]
                bytes += chunk
                rest = rest.dropFirst(chunk.count)
            } while !rest.isEmpty
        }
        bytes.append(DHCPOptionCode.end.rawValue)
        if bytes.count < Self.minimumEncodedLength {
            bytes += repeatElement(0, count: Self.minimumEncodedLength - bytes.count)
        }
        return bytes
    }

    private static func field(_ value: [UInt8], length: Int) -> [UInt8] {
        Array(value.prefix(length)) + Array(repeating: 0, count: max(0, length - value.count))
    }

    // MARK: Typed views of common fields and options

    /// Option 53, nil when absent or unknown (a plain BOOTP message has none).
    package var messageType: DHCPMessageType? {
        get { options[.messageType].flatMap { $0.count == 1 ? DHCPMessageType(rawValue: $0[0]) : nil } }
        set { options[.messageType] = newValue.map { [$0.rawValue] } }
    }

    /// The client MAC, when `htype`/`hlen` say Ethernet.
    package var clientMAC: MACAddress? {
        htype == 1 && hlen == 6 ? MACAddress(Array(chaddr.prefix(6))) : nil
    }

    /// The broadcast bit of ``flags``.
    package var isBroadcast: Bool { flags & Self.broadcastFlag != 0 }

    /// Option 50.
    package var requestedAddress: IPv4Address? { options[.requestedIPAddress].flatMap(DHCPOptionValue.address(from:)) }

    /// Option 54.
    package var serverIdentifier: IPv4Address? { options[.serverIdentifier].flatMap(DHCPOptionValue.address(from:)) }

    /// Option 57, the largest message the client accepts.
    package var maximumMessageSize: Int? { options[.maximumMessageSize].flatMap(DHCPOptionValue.uint16(from:)).map { Int($0) } }

    /// Option 55.
    package var parameterRequestList: [DHCPOptionCode] { (options[.parameterRequestList] ?? []).map { DHCPOptionCode($0) } }
}

/// Why bytes could not be read as a DHCP message.
package enum DHCPDecodingError: Error, Equatable, CustomStringConvertible {
    case tooShort(length: Int)
    case invalidOperation(UInt8)
    case invalidHardwareAddressLength(UInt8)
    case missingMagicCookie
    case truncatedOption(code: UInt8, field: String)
    case invalidOverload(UInt8)

    package var description: String {
        switch self {
        case .tooShort(let length):
            "DHCP packet of \(length) bytes is shorter than the 240-byte header; ignoring it (not a DHCP client?)"
        case .invalidOperation(let op):
            "DHCP packet has op \(op), neither BOOTREQUEST (1) nor BOOTREPLY (2); ignoring it"
        case .invalidHardwareAddressLength(let hlen):
            "DHCP packet has hardware address length \(hlen), over 16; ignoring it"
        case .missingMagicCookie:
            "packet lacks the DHCP magic cookie 99.130.83.99 (plain BOOTP?); ignoring it"
        case .truncatedOption(let code, let field):
            "DHCP option \(code) in the \(field) field runs past its end; ignoring the packet"
        case .invalidOverload(let value):
            "DHCP option overload (52) has invalid value \(value); ignoring the packet"
        }
    }
}
