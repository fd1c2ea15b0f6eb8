import NetworkTypes

/// The RFC 1071 Internet checksum: one's complement of the one's-complement sum of 16-bit words.
package enum InternetChecksum {
    /// The one's-complement sum of `bytes` added to `initial`, folded to 16 bits (not yet complemented).
    package static func sum(_ bytes: some Sequence<UInt8>, initial: UInt32 = 0) -> UInt32 {
        var total = UInt64(initial)
        var high: UInt8?
        for byte in bytes {
            if let first = high {
                total += UInt64(first) << 8 | UInt64(byte)
                high = nil
            } else {
                high = byte
            }
        }
        if let first = high { total += UInt64(first) << 8 }  // odd length: pad with a zero byte
        while total > 0xFFFF { total = (total & 0xFFFF) + (total >> 16) }
        return UInt32(total)
    }

    /// The checksum to put into a header whose checksum field is zero.
    package static func checksum(_ bytes: some Sequence<UInt8>, initial: UInt32 = 0) -> UInt16 {
        ~UInt16(sum(bytes, initial: initial))
    }
}

/// Builds and reads Ethernet II / IPv4 / UDP frames carrying DHCP, for the packet socket that
/// reaches clients with no address yet (and without ARP).
package enum UDPFrame {
    package static let ethernetHeaderLength = 14
    package static let ipv4HeaderLength = 20
    package static let udpHeaderLength = 8
    package static let ethertypeIPv4: UInt16 = 0x0800
    package static let protocolUDP: UInt8 = 17

    /// Ethernet + IPv4 (no options, TTL 64, not fragmented) + UDP with both checksums computed.
    package static func build(
        sourceMAC: MACAddress, destinationMAC: MACAddress,
        sourceIP: IPv4Address, destinationIP: IPv4Address,
        sourcePort: UInt16, destinationPort: UInt16,
        payload: [UInt8]
    ) -> [UInt8] {
        let udpLength = udpHeaderLength + payload.count
        let totalLength = ipv4HeaderLength + udpLength
        var frame: [UInt8] = []
        frame.reserveCapacity(ethernetHeaderLength + totalLength)

        frame += destinationMAC.octets
        frame += sourceMAC.octets
        frame += DHCPOptionValue.uint16(ethertypeIPv4)

        var ip: [UInt8] = [0x45, 0x00]  // version 4, 5 words; default TOS
        ip += DHCPOptionValue.uint16(UInt16(totalLength))
        ip += [0, 0, 0x40, 0x00]  // identification 0, don't fragment
        ip += [64, protocolUDP, 0, 0]  // TTL, protocol, checksum placeholder
        ip += sourceIP.octets
        ip += destinationIP.octets
        let ipChecksum = InternetChecksum.checksum(ip)
        ip[10] = UInt8(ipChecksum >> 8)
        ip[11] = UInt8(ipChecksum & 0xFF)
        frame += ip

        var udp = DHCPOptionValue.uint16(sourcePort) + DHCPOptionValue.uint16(destinationPort)
        udp += DHCPOptionValue.uint16(UInt16(udpLength))
        udp += [0, 0]
        var udpChecksum = InternetChecksum.checksum(
            udp + payload,
            initial: pseudoHeaderSum(source: sourceIP, destination: destinationIP, udpLength: udpLength))
        if udpChecksum == 0 { udpChecksum = 0xFFFF }  // RFC 768: zero means "no checksum"
        udp[6] = UInt8(udpChecksum >> 8)
        udp[7] = UInt8(udpChecksum & 0xFF)
        frame += udp
        frame += payload
        return frame
    }

    /// The one's-complement sum of the IPv4 pseudo-header that the UDP checksum covers.
    static func pseudoHeaderSum(source: IPv4Address, destination: IPv4Address, udpLength: Int) -> UInt32 {
        InternetChecksum.sum(source.octets + destination.octets + [0, protocolUDP] + DHCPOptionValue.uint16(UInt16(udpLength)))
    }

    /// A parsed frame, as a test or a capture reads it back.
    package struct Parsed: Sendable, Equatable {
        package var sourceMAC: MACAddress
        package var destinationMAC: MACAddress
        package var sourceIP: IPv4Address
        package var destinationIP: IPv4Address
        package var sourcePort: UInt16
        package var destinationPort: UInt16
        package var payload: [UInt8]
        /// Whether the IPv4 header checksum verifies.
        package var ipChecksumValid: Bool
        /// Whether the UDP checksum verifies (true when the sender left it zero).
        package var udpChecksumValid: Bool
    }

    /// Reads an Ethernet/IPv4/UDP frame; nil when it is anything else or is cut short.
    package static func parse(_ frame: [UInt8]) -> Parsed? {
        guard frame.count >= ethernetHeaderLength + ipv4HeaderLength + udpHeaderLength,
              DHCPOptionValue.uint16(from: Array(frame[12..<14])) == ethertypeIPv4 else { return nil }
        let ipStart = ethernetHeaderLength
        guard frame[ipStart] >> 4 == 4 else { return nil }
        let ihl = Int(frame[ipStart] & 0x0F) * 4
        guard ihl >= ipv4HeaderLength, frame[ipStart + 9] == protocolUDP,
              let totalLength = DHCPOptionValue.uint16(from: Array(frame[ipStart + 2..<ipStart + 4])).map(Int.init),
              totalLength >= ihl + udpHeaderLength, ipStart + totalLength <= frame.count else { return nil }
        let udpStart = ipStart + ihl
        let header = Array(frame[udpStart..<udpStart + udpHeaderLength])
        guard let udpLength = DHCPOptionValue.uint16(from: Array(header[4..<6])).map(Int.init),
              udpLength >= udpHeaderLength, udpStart + udpLength <= ipStart + totalLength else { return nil }
        let sourceIP = IPv4Address(DHCPOptionValue.uint32(from: Array(frame[ipStart + 12..<ipStart + 16]))!)
        let destinationIP = IPv4Address(DHCPOptionValue.uint32(from: Array(frame[ipStart + 16..<ipStart + 20]))!)
        let udp = Array(frame[udpStart..<udpStart + udpLength])
        let storedUDPChecksum = DHCPOptionValue.uint16(from: Array(header[6..<8]))!
        let udpValid = storedUDPChecksum == 0 || InternetChecksum.sum(
            udp, initial: pseudoHeaderSum(source: sourceIP, destination: destinationIP, udpLength: udpLength)) == 0xFFFF
        return Parsed(
            sourceMAC: MACAddress(Array(frame[6..<12])),
            destinationMAC: MACAddress(Array(frame[0..<6])),
            sourceIP: sourceIP,
            destinationIP: destinationIP,
            sourcePort: DHCPOptionValue.uint16(from: Array(header[0..<2]))!,
            destinationPort: DHCPOptionValue.uint16(from: Array(header[2..<4]))!,
            payload: Array(udp[udpHeaderLength...]),
            ipChecksumValid: InternetChecksum.sum(frame[ipStart..<ipStart + ihl]) == 0xFFFF,
            udpChecksumValid: udpValid)
    }
}
