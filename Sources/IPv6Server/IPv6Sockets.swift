#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetworkTypes

/// The thin OS layer of the IPv6 responder: one AF_PACKET socket that receives the interface's
/// IPv6 frames (with the DHCPv6 and all-routers group addresses joined) and sends whole frames,
/// and a pipe that wakes the receive loop. Created in the network namespace of the calling thread.
struct IPv6Sockets: ~Copyable {
    let packet: Int32
    let wakeup: Int32
    let wakeupWriter: Int32
    let interfaceIndex: Int32
    let interfaceMAC: MACAddress

    static let ethertypeIPv6: UInt16 = 0x86DD
    /// <linux/if_packet.h>, which the Glibc module does not export.
    static let solPacket: Int32 = 263
    static let packetAddMembership: Int32 = 1
    static let packetMRMulticast: UInt16 = 0
    static let packetOutgoing: UInt8 = 4

    init(interfaceName name: String) throws(IPv6ServerError) {
        guard !name.isEmpty, name.utf8.count < Int(IFNAMSIZ) else { throw .interfaceNotFound(name) }
        let index = if_nametoindex(name)
        guard index != 0 else { throw .interfaceNotFound(name) }

        var opened: [Int32] = []
        func fail(_ operation: String) -> IPv6ServerError {
            let error = IPv6ServerError.systemCall(operation, interface: name, errno: errno)
            for fd in opened { close(fd) }
            return error
        }

        let packet = socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(Self.ethertypeIPv6.bigEndian))
        guard packet >= 0 else { throw fail("socket(AF_PACKET, SOCK_RAW, ETH_P_IPV6)") }
        opened.append(packet)
        let address = Self.linkLayerAddress(interfaceIndex: Int32(index), destination: [])
        let bound = address.withUnsafeBytes {
            bind(packet, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
        }
        guard bound == 0 else { throw fail("bind(AF_PACKET)") }

        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { buffer in
            for (offset, byte) in name.utf8.enumerated() { buffer[offset] = byte }
        }
        guard ioctl(packet, UInt(SIOCGIFHWADDR), &request) == 0 else { throw fail("ioctl(SIOCGIFHWADDR)") }
        let mac = withUnsafeBytes(of: request.ifr_ifru.ifru_hwaddr.sa_data) { MACAddress(Array($0.prefix(6))) }

        // The device must pass these group addresses up even when it filters multicast (macvlan does).
        for group in [IPv6Address.allDHCPServersAndRelays, IPv6Address.allRouters] {
            var membership: [UInt8] = []
            withUnsafeBytes(of: Int32(index)) { membership += $0 }
            withUnsafeBytes(of: Self.packetMRMulticast) { membership += $0 }
            withUnsafeBytes(of: UInt16(6)) { membership += $0 }
            membership += group.multicastMAC.octets + [0, 0]
            let joined = membership.withUnsafeBytes {
                setsockopt(packet, Self.solPacket, Self.packetAddMembership, $0.baseAddress, socklen_t($0.count))
            }
            guard joined == 0 else { throw fail("setsockopt(PACKET_ADD_MEMBERSHIP \(group))") }
        }

        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else { throw fail("pipe") }
        opened += pipeEnds
        for end in pipeEnds {
            guard fcntl(end, F_SETFD, FD_CLOEXEC) == 0, fcntl(end, F_SETFL, O_NONBLOCK) == 0 else { throw fail("fcntl(pipe)") }
        }
        self.packet = packet
        wakeup = pipeEnds[0]
        wakeupWriter = pipeEnds[1]
        interfaceIndex = Int32(index)
        interfaceMAC = mac
    }

    deinit {
        close(packet)
        close(wakeup)
        close(wakeupWriter)
    }

    func signalStop() {
        var one: UInt8 = 1
        _ = write(wakeupWriter, &one, 1)
    }

    enum Event {
        case frame(Int)
        case timeout
        case stopped
    }

    /// Blocks until a frame that did not come from this host arrives (its length returned, bytes in
    /// `buffer`), `timeoutMilliseconds` pass, or ``signalStop()`` was called.
    func wait(into buffer: inout [UInt8], timeoutMilliseconds: Int32) throws(IPv6ServerError) -> Event {
        while true {
            var fds = [pollfd(fd: packet, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeup, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, nfds_t(fds.count), timeoutMilliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                throw .systemCall("poll", interface: nil, errno: errno)
            }
            if fds[1].revents != 0 { return .stopped }
            if ready == 0 { return .timeout }
            guard fds[0].revents != 0 else { continue }
            var from = [UInt8](repeating: 0, count: 20)
            var fromLength = socklen_t(from.count)
            let count = buffer.withUnsafeMutableBytes { bytes in
                from.withUnsafeMutableBytes {
                    recvfrom(packet, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT),
                             $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), &fromLength)
                }
            }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
                throw .systemCall("recvfrom(AF_PACKET)", interface: nil, errno: errno)
            }
            if from[10] == Self.packetOutgoing { continue }  // our own frames, looped back to packet sockets
            return .frame(count)
        }
    }

    func send(frame: [UInt8]) throws(IPv6ServerError) {
        let address = Self.linkLayerAddress(interfaceIndex: interfaceIndex, destination: Array(frame.prefix(6)))
        let sent = frame.withUnsafeBytes { bytes in
            address.withUnsafeBytes {
                sendto(packet, bytes.baseAddress, bytes.count, 0, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
            }
        }
        guard sent == frame.count else { throw .systemCall("sendto(AF_PACKET)", interface: nil, errno: errno) }
    }

    /// A `struct sockaddr_ll` for ETH_P_IPV6: family, protocol, ifindex, hatype, pkttype, halen, addr[8].
    static func linkLayerAddress(interfaceIndex: Int32, destination: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt16(AF_PACKET)) { bytes += $0 }
        withUnsafeBytes(of: ethertypeIPv6.bigEndian) { bytes += $0 }
        withUnsafeBytes(of: interfaceIndex) { bytes += $0 }
        bytes += [0, 0, 0, UInt8(destination.count)]
        bytes += destination + Array(repeating: 0, count: 8 - destination.count)
        return bytes
    }
}
