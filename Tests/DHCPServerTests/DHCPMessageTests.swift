import DHCPServer
import NetworkTypes
import Testing

@Suite struct DHCPMessageTests {
    /// A DISCOVER written byte by byte from RFC 2131 figure 1, independent of the encoder.
    static func handBuiltDiscover() -> [UInt8] {
        var bytes: [UInt8] = [1, 1, 6, 0, 0xDE, 0xAD, 0xBE, 0xEF, 0, 3, 0x80, 0]
        bytes += [UInt8](repeating: 0, count: 16)  // ciaddr, yiaddr, siaddr, giaddr
        bytes += [0x52, 0x54, 0x00, 0x12, 0x34, 0x56] + [UInt8](repeating: 0, count: 10)
        bytes += [UInt8](repeating: 0, count: 64 + 128)
        bytes += [99, 130, 83, 99]
        bytes += [53, 1, 1]  // DHCPDISCOVER
        bytes += [0, 0]  // pads
        bytes += [55, 3, 1, 3, 121]
        bytes += [61, 7, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
        bytes += [255]
        return bytes
    }

    @Test func decodesHandBuiltDiscover() throws {
        let message = try DHCPMessage(decoding: Self.handBuiltDiscover())
        #expect(message.op == .request)
        #expect(message.xid == 0xDEAD_BEEF)
        #expect(message.secs == 3)
        #expect(message.isBroadcast)
        #expect(message.messageType == .discover)
        #expect(message.clientMAC == Sample.clientMAC)
        #expect(message.parameterRequestList == [.subnetMask, .router, .classlessStaticRoute])
        #expect(message.options[.clientIdentifier] == [1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
        #expect(message.options.entries.map(\.code) == [.messageType, .parameterRequestList, .clientIdentifier])
        #expect(message.sname.isEmpty && message.file.isEmpty)
    }

    @Test func encodesFieldsAtTheirRFCOffsets() {
        var message = DHCPMessage(op: .reply, xid: 0x0102_0304, clientMAC: Sample.clientMAC)
        message.flags = DHCPMessage.broadcastFlag
        message.ciaddr = ip("1.2.3.4")
        message.yiaddr = ip("10.42.0.7")
        message.siaddr = ip("5.6.7.8")
        message.giaddr = ip("9.10.11.12")
        message.sname = Array("srv".utf8)
        message.file = Array("boot".utf8)
        message.messageType = .ack
        let bytes = message.encoded()
        #expect(bytes.count == DHCPMessage.minimumEncodedLength)
        #expect(Array(bytes[0..<12]) == [2, 1, 6, 0, 1, 2, 3, 4, 0, 0, 0x80, 0])
        #expect(Array(bytes[12..<28]) == [1, 2, 3, 4, 10, 42, 0, 7, 5, 6, 7, 8, 9, 10, 11, 12])
        #expect(Array(bytes[28..<34]) == Sample.clientMAC.octets)
        #expect(Array(bytes[44..<48]) == Array("srv".utf8) + [0])
        #expect(Array(bytes[108..<113]) == Array("boot".utf8) + [0])
        #expect(Array(bytes[236..<244]) == [99, 130, 83, 99, 53, 1, 5, 255])
        #expect(bytes[244...].allSatisfy { $0 == 0 })
    }

    @Test func roundTripsEveryField() throws {
        var message = DHCPMessage(
            op: .reply, htype: 1, hlen: 6, hops: 2, xid: 77, secs: 9, flags: 0x8000,
            ciaddr: ip("1.1.1.1"), yiaddr: ip("2.2.2.2"), siaddr: ip("3.3.3.3"), giaddr: ip("4.4.4.4"),
            chaddr: Array(1...16), sname: [65, 0, 66], file: Array(repeating: 7, count: 128))
        message.options = [DHCPOption(.messageType, [2]), DHCPOption(DHCPOptionCode(224), []),
                           DHCPOption(.domainSearch, Array(repeating: 3, count: 600))]
        #expect(try DHCPMessage(decoding: message.encoded()) == message)
    }

    @Test func splitsLongOptionsAndConcatenatesThemBack() throws {
        var message = Sample.request(.discover)
        let long = (0..<600).map { UInt8($0 % 251) }
        message.options[.classlessStaticRoute] = long
        let bytes = message.encoded()
        // 600 bytes need three instances: 255 + 255 + 90.
        var lengths: [Int] = []
        var index = 240
        while bytes[index] != 255 {
            if bytes[index] == 121 { lengths.append(Int(bytes[index + 1])) }
            index += 2 + Int(bytes[index + 1])
        }
        #expect(lengths == [255, 255, 90])
        #expect(try DHCPMessage(decoding: bytes).options[.classlessStaticRoute] == long)
    }

    @Test func mergesOverloadedFileAndSnameOptions() throws {
        var bytes = Self.handBuiltDiscover()
        let end = bytes.lastIndex(of: 255)!
        bytes.insert(contentsOf: [52, 1, 3], at: end)  // overload: both file and sname
        bytes.replaceSubrange(108..<114, with: [15, 3, 0x61, 0x62, 0x63, 255])  // file: domain "abc"
        bytes.replaceSubrange(44..<52, with: [12, 2, 0x68, 0x6F, 15, 1, 0x64, 255])  // sname: host "ho", domain += "d"
        let message = try DHCPMessage(decoding: bytes)
        #expect(message.options[.hostName] == Array("ho".utf8))
        #expect(message.options[.domainName] == Array("abcd".utf8))  // file before sname (RFC 3396)
        #expect(message.options[.overload] == nil)
        #expect(message.file.isEmpty && message.sname.isEmpty)
    }

    @Test func toleratesMissingEndOption() throws {
        var bytes = Self.handBuiltDiscover()
        bytes.removeLast()
        #expect(try DHCPMessage(decoding: bytes).messageType == .discover)
    }

    @Test func rejectsMalformedPackets() {
        let valid = Self.handBuiltDiscover()
        #expect(throws: DHCPDecodingError.tooShort(length: 239)) { try DHCPMessage(decoding: valid.prefix(239)) }
        var badOp = valid
        badOp[0] = 3
        #expect(throws: DHCPDecodingError.invalidOperation(3)) { try DHCPMessage(decoding: badOp) }
        var badHlen = valid
        badHlen[2] = 17
        #expect(throws: DHCPDecodingError.invalidHardwareAddressLength(17)) { try DHCPMessage(decoding: badHlen) }
        var badCookie = valid
        badCookie[239] = 0
        #expect(throws: DHCPDecodingError.missingMagicCookie) { try DHCPMessage(decoding: badCookie) }
        var truncated = Array(valid.dropLast())
        truncated[truncated.count - 8] = 40  // client identifier claims 40 bytes
        #expect(throws: DHCPDecodingError.truncatedOption(code: 61, field: "options")) { try DHCPMessage(decoding: truncated) }
        var badOverload = valid
        badOverload.insert(contentsOf: [52, 1, 4], at: badOverload.count - 1)
        #expect(throws: DHCPDecodingError.invalidOverload(4)) { try DHCPMessage(decoding: badOverload) }
    }

    @Test func errorDescriptionsAreOneLine() {
        let errors: [DHCPDecodingError] = [.tooShort(length: 1), .invalidOperation(9), .invalidHardwareAddressLength(20),
                                           .missingMagicCookie, .truncatedOption(code: 1, field: "file"), .invalidOverload(0)]
        for error in errors {
            #expect(!error.description.contains("\n") && !error.description.isEmpty)
        }
    }
}
