#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetworkTypes
import SystemPackage

/// The AF_PACKET pieces every responder that reads and writes whole Ethernet frames shares (the DHCPv4
/// server here, the RA + DHCPv6 responder in IPv6Server): the interface's index and MAC, `struct
/// sockaddr_ll`, binding, sending and the pipe that wakes a blocked receive loop. Each returns the
/// system call's result; the caller turns a failure (with `errno`) into its own typed error.
package enum PacketSocket {
    /// ETH_P_IP, ETH_P_IPV6 and ETH_P_ALL (every protocol, for binding only).
    package static let ethertypeIPv4: UInt16 = 0x0800
    package static let ethertypeIPv6: UInt16 = 0x86DD
    package static let ethertypeAll: UInt16 = 0x0003
    /// PACKET_OUTGOING from linux/if_packet.h (`sll_pkttype` of a frame this host sent itself).
    package static let outgoing: UInt8 = 4

    /// The index of interface `name` in the calling thread's namespace; nil when there is none.
    package static func interfaceIndex(_ name: String) -> Int32? {
        guard !name.isEmpty, name.utf8.count < Int(IFNAMSIZ) else { return nil }
        let index = if_nametoindex(name)
        return index == 0 ? nil : Int32(index)
    }

    /// A packet socket for no protocol yet: it receives nothing until ``bindToInterface(_:ethertype:interfaceIndex:)``
    /// names one, so a filter can be attached first and the socket is hooked to this interface only.
    package static func open() -> Int32 {
        socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    }

    /// bind(2) to `ethertype` frames on the interface; the result of bind.
    package static func bindToInterface(_ fd: Int32, ethertype: UInt16, interfaceIndex: Int32) -> Int32 {
        linkLayerAddress(ethertype: ethertype, interfaceIndex: interfaceIndex, destination: []).withUnsafeBytes {
            bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
        }
    }

    /// The MAC of interface `name` (SIOCGIFHWADDR on any socket `fd`); nil when the ioctl fails.
    package static func hardwareAddress(of name: String, using fd: Int32) -> MACAddress? {
        var request = InterfaceRequest(name: name)
        guard request.perform(UInt(SIOCGIFHWADDR), on: fd) == 0 else { return nil }
        return MACAddress(request.hardwareAddress)
    }

    /// A non-blocking close-on-exec pipe (reader, writer) whose reader a poll loop watches next to its
    /// socket; nil when it cannot be made (both ends closed again).
    package static func wakeupPipe() -> (reader: Int32, writer: Int32)? {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return nil }
        for end in ends where fcntl(end, F_SETFD, FD_CLOEXEC) != 0 || fcntl(end, F_SETFL, O_NONBLOCK) != 0 {
            let saved = Errno.current
            ends.forEach { close($0) }
            Errno.current = saved
            return nil
        }
        return (ends[0], ends[1])
    }

    /// Sends a complete Ethernet frame out of the interface (to the frame's own destination MAC);
    /// whether all of it went.
    package static func send(_ frame: [UInt8], on fd: Int32, ethertype: UInt16, interfaceIndex: Int32) -> Bool {
        let address = linkLayerAddress(ethertype: ethertype, interfaceIndex: interfaceIndex, destination: Array(frame.prefix(6)))
        let sent = frame.withUnsafeBytes { bytes in
            address.withUnsafeBytes {
                sendto(fd, bytes.baseAddress, bytes.count, 0, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
            }
        }
        return sent == frame.count
    }

    /// A `struct sockaddr_ll` (linux/if_packet.h, which the Glibc module does not export): family,
    /// protocol (network order), ifindex, hatype, pkttype (both unused when sending), halen, addr[8] — 20 bytes.
    package static func linkLayerAddress(ethertype: UInt16, interfaceIndex: Int32, destination: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt16(AF_PACKET)) { bytes += $0 }
        withUnsafeBytes(of: ethertype.bigEndian) { bytes += $0 }
        withUnsafeBytes(of: interfaceIndex) { bytes += $0 }
        bytes += [0, 0, 0, UInt8(destination.count)]
        bytes += destination + Array(repeating: 0, count: 8 - destination.count)
        return bytes
    }
}
