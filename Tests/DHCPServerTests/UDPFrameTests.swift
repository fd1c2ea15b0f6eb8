import DHCPServer
import NetworkTypes
import Testing

@Suite struct UDPFrameTests {
    /// The IPv4 header of the worked example commonly used for RFC 1071 (checksum 0xB861).
    @Test func checksumMatchesKnownIPv4Header() {
        let header: [UInt8] = [0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                               0x00, 0x00, 0xC0, 0xA8, 0x00, 0x01, 0xC0, 0xA8, 0x00, 0xC7]
        #expect(InternetChecksum.checksum(header) == 0xB861)
        var filled = header
        filled[10] = 0xB8
        filled[11] = 0x61
        #expect(InternetChecksum.sum(filled) == 0xFFFF)
    }

    @Test func checksumPadsOddLengthAndFoldsCarries() {
        #expect(InternetChecksum.sum([0x01]) == 0x0100)
        #expect(InternetChecksum.sum([0xFF, 0xFF, 0x00, 0x02]) == 0x0002)  // 0xFFFF + 2 = 0x10001 -> 0x0002
        #expect(InternetChecksum.checksum([]) == 0xFFFF)
    }

    @Test(arguments: [0, 1, 17, 300, 1001])
    func builtFrameParsesBackWithValidChecksums(payloadLength: Int) throws {
        let payload = (0..<payloadLength).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        let frame = UDPFrame.build(
            sourceMAC: mac("02:00:00:00:00:01"), destinationMAC: mac("52:54:00:12:34:56"),
            sourceIP: ip("169.254.0.1"), destinationIP: ip("10.42.0.7"),
            sourcePort: 67, destinationPort: 68, payload: payload)
        #expect(frame.count == 14 + 20 + 8 + payloadLength)
        #expect(Array(frame[12..<14]) == [0x08, 0x00])
        #expect(frame[14] == 0x45 && frame[23] == 17)
        #expect(Array(frame[16..<18]) == [UInt8((28 + payloadLength) >> 8), UInt8((28 + payloadLength) & 0xFF)])
        let parsed = try #require(UDPFrame.parse(frame))
        #expect(parsed.ipChecksumValid && parsed.udpChecksumValid)
        #expect(parsed.payload == payload)
        #expect(parsed.sourceIP == ip("169.254.0.1") && parsed.destinationIP == ip("10.42.0.7"))
        #expect(parsed.sourcePort == 67 && parsed.destinationPort == 68)
    }

    @Test func corruptionIsDetectedByTheChecksums() throws {
        let frame = UDPFrame.build(
            sourceMAC: mac("02:00:00:00:00:01"), destinationMAC: mac("ff:ff:ff:ff:ff:ff"),
            sourceIP: ip("169.254.0.1"), destinationIP: ip("255.255.255.255"),
            sourcePort: 67, destinationPort: 68, payload: Array(repeating: 0xAB, count: 300))
        var payloadFlipped = frame
        payloadFlipped[100] ^= 0x01
        let payloadParsed = try #require(UDPFrame.parse(payloadFlipped))
        #expect(payloadParsed.ipChecksumValid && !payloadParsed.udpChecksumValid)
        var headerFlipped = frame
        headerFlipped[22] ^= 0x01  // TTL
        #expect(try #require(UDPFrame.parse(headerFlipped)).ipChecksumValid == false)
    }

    @Test func parseRejectsNonUDPAndShortFrames() {
        let frame = UDPFrame.build(
            sourceMAC: mac("02:00:00:00:00:01"), destinationMAC: mac("ff:ff:ff:ff:ff:ff"),
            sourceIP: ip("1.2.3.4"), destinationIP: ip("5.6.7.8"), sourcePort: 1, destinationPort: 2, payload: [1, 2, 3])
        #expect(UDPFrame.parse(Array(frame.prefix(41))) == nil)
        var arp = frame
        arp[13] = 0x06
        #expect(UDPFrame.parse(arp) == nil)
        var tcp = frame
        tcp[23] = 6
        #expect(UDPFrame.parse(tcp) == nil)
    }
}
