import DHCPServer
import NetworkTypes

/// Ethernet II frames carrying one IPv6 packet whose payload is UDP or ICMPv6 (no extension
/// headers): built for the packet socket, and read back from it.
package enum IPv6Frame {
    package static let ethertypeIPv6: UInt16 = 0x86DD
    package static let ethernetHeaderLength = 14
    package static let ipv6HeaderLength = 40
    package static let nextHeaderUDP: UInt8 = 17
    package static let nextHeaderICMPv6: UInt8 = 58

    /// A frame with the upper-layer checksum (UDP or ICMPv6, RFC 8200 section 8.1) filled in.
    /// `upperLayer` is the UDP header + payload or the ICMPv6 message, its checksum field zero.
    package static func build(
        sourceMAC: MACAddress, destinationMAC: MACAddress,
        source: IPv6Address, destination: IPv6Address,
        nextHeader: UInt8, hopLimit: UInt8, upperLayer: [UInt8]
    ) -> [UInt8] {
        var frame: [UInt8] = []
        frame.reserveCapacity(ethernetHeaderLength + ipv6HeaderLength + upperLayer.count)
        frame += destinationMAC.octets
        frame += sourceMAC.octets
        frame.append16(ethertypeIPv6)
        frame += [0x60, 0, 0, 0]  // version 6, traffic class 0, flow label 0
        frame.append16(UInt16(upperLayer.count))
        frame += [nextHeader, hopLimit]
        frame += source.octets
        frame += destination.octets
        var payload = upperLayer
        let checksumOffset = nextHeader == nextHeaderUDP ? 6 : 2
        if payload.count >= checksumOffset + 2 {
            var sum = InternetChecksum.checksum(
                payload, initial: pseudoHeaderSum(source: source, destination: destination, length: payload.count, nextHeader: nextHeader))
            if sum == 0, nextHeader == nextHeaderUDP { sum = 0xFFFF }  // a zero UDP checksum is not allowed over IPv6
            payload[checksumOffset] = UInt8(sum >> 8)
            payload[checksumOffset + 1] = UInt8(sum & 0xFF)
        }
        frame += payload
        return frame
    }

    /// A UDP datagram (header + payload) for ``build(sourceMAC:destinationMAC:source:destination:nextHeader:hopLimit:upperLayer:)``.
    package static func udp(sourcePort: UInt16, destinationPort: UInt16, payload: [UInt8]) -> [UInt8] {
        var datagram: [UInt8] = []
        datagram.reserveCapacity(8 + payload.count)
        datagram.append16(sourcePort)
        datagram.append16(destinationPort)
        datagram.append16(UInt16(truncatingIfNeeded: 8 + payload.count))
        datagram += [0, 0]
        datagram += payload
        return datagram
    }

    static func pseudoHeaderSum(source: IPv6Address, destination: IPv6Address, length: Int, nextHeader: UInt8) -> UInt32 {
        var header = source.octets + destination.octets
        header.append32(UInt32(length))
        header += [0, 0, 0, nextHeader]
        return InternetChecksum.sum(header)
    }

    /// What a received frame carries.
    package struct Parsed: Sendable, Equatable {
        package var sourceMAC: MACAddress
        package var destinationMAC: MACAddress
        package var source: IPv6Address
        package var destination: IPv6Address
        package var nextHeader: UInt8
        package var hopLimit: UInt8
        /// The upper-layer bytes (exactly the IPv6 payload length; Ethernet padding dropped).
        package var upperLayer: [UInt8]
        /// Whether the UDP or ICMPv6 checksum verifies (a UDP checksum of zero does not).
        package var checksumValid: Bool

        /// For UDP: source port, destination port and payload; nil when not UDP or its length field is wrong.
        package var udp: (sourcePort: UInt16, destinationPort: UInt16, payload: [UInt8])? {
            guard nextHeader == IPv6Frame.nextHeaderUDP else { return nil }
            var reader = WireReader(upperLayer)
            guard let sourcePort = reader.uint16(), let destinationPort = reader.uint16(),
                  let length = reader.uint16(), Int(length) == upperLayer.count, reader.uint16() != nil else { return nil }
            return (sourcePort, destinationPort, reader.rest())
        }
    }

    /// Reads an Ethernet/IPv6 frame; nil when it is anything else or cut short.
    package static func parse(_ frame: some Collection<UInt8>) -> Parsed? {
        var reader = WireReader(frame)
        guard let destinationMAC = reader.bytes(6), let sourceMAC = reader.bytes(6), reader.uint16() == ethertypeIPv6,
              let first = reader.uint8(), first >> 4 == 6, reader.bytes(3) != nil,
              let payloadLength = reader.uint16(), let nextHeader = reader.uint8(), let hopLimit = reader.uint8(),
              let source = reader.bytes(16), let destination = reader.bytes(16),
              let upperLayer = reader.bytes(Int(payloadLength)) else { return nil }
        let sourceAddress = IPv6Address(source), destinationAddress = IPv6Address(destination)
        var valid = false
        if nextHeader == nextHeaderUDP || nextHeader == nextHeaderICMPv6 {
            let minimum = nextHeader == nextHeaderUDP ? 8 : 4
            let zeroUDP = nextHeader == nextHeaderUDP && upperLayer.count >= 8 && upperLayer[6] == 0 && upperLayer[7] == 0
            valid = upperLayer.count >= minimum && !zeroUDP && InternetChecksum.sum(
                upperLayer, initial: pseudoHeaderSum(source: sourceAddress, destination: destinationAddress,
                                                     length: upperLayer.count, nextHeader: nextHeader)) == 0xFFFF
        }
        return Parsed(sourceMAC: MACAddress(sourceMAC), destinationMAC: MACAddress(destinationMAC),
                      source: sourceAddress, destination: destinationAddress,
                      nextHeader: nextHeader, hopLimit: hopLimit, upperLayer: upperLayer, checksumValid: valid)
    }
}
