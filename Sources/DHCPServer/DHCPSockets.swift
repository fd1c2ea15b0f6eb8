#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetworkTypes
import SystemPackage

/// The thin OS layer of the server: the file descriptors it needs and the system calls on
/// them. Everything here is created in the network namespace of the calling thread.
///
/// Requests are read from a packet socket, not the UDP socket, because only the Ethernet header
/// says who sent a frame: the server answers frames whose source is the VM's MAC, never a host
/// on the network that merely writes that MAC into `chaddr`.
struct DHCPSockets: ~Copyable {
    /// UDP socket bound to 0.0.0.0:67 on the interface. It holds the port (another DHCP server
    /// cannot bind it, and the kernel sends no ICMP port-unreachable), with a filter that drops
    /// every datagram, so nothing queues on it.
    let udp: Int32
    /// AF_PACKET socket for IPv4 on the interface, filtered in the kernel to unfragmented UDP to
    /// port 67: receives the requests as whole frames and sends the replies as whole frames.
    let packet: Int32
    /// Read end of a pipe that `stop()` writes to, waking the blocked receive loop.
    let wakeup: Int32
    let wakeupWriter: Int32
    let interfaceIndex: Int32
    let interfaceMAC: MACAddress

    init(interfaceName: String) throws(DHCPServerError) {
        let name = interfaceName
        guard let index = PacketSocket.interfaceIndex(name) else { throw .interfaceNotFound(name) }

        var opened: [Int32] = []
        func fail(_ operation: String) -> DHCPServerError {
            let error = DHCPServerError.systemCall(operation, interface: name, errno: .current)
            for fd in opened { close(fd) }
            return error
        }

        let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard udp >= 0 else { throw fail("socket(AF_INET, SOCK_DGRAM)") }
        opened.append(udp)
        var on: Int32 = 1
        let intSize = socklen_t(MemoryLayout<Int32>.size)
        guard setsockopt(udp, SOL_SOCKET, SO_REUSEADDR, &on, intSize) == 0 else { throw fail("setsockopt(SO_REUSEADDR)") }
        guard setsockopt(udp, SOL_SOCKET, SO_BROADCAST, &on, intSize) == 0 else { throw fail("setsockopt(SO_BROADCAST)") }
        let bound = name.withCString { setsockopt(udp, SOL_SOCKET, SO_BINDTODEVICE, $0, socklen_t(strlen($0) + 1)) }
        guard bound == 0 else { throw fail("setsockopt(SO_BINDTODEVICE)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = DHCPPorts.server.bigEndian
        address.sin_addr = in_addr(s_addr: INADDR_ANY)
        let bindResult = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(udp, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bindResult == 0 else { throw fail("bind(0.0.0.0:67)") }
        guard Self.attach(filter: Self.dropEverything, to: udp) == 0 else { throw fail("setsockopt(SO_ATTACH_FILTER)") }

        guard let mac = PacketSocket.hardwareAddress(of: name, using: udp) else { throw fail("ioctl(SIOCGIFHWADDR)") }

        // Protocol 0 receives nothing until the filter is in place and bind() names ETH_P_IP,
        // so no unfiltered frame is ever queued.
        let packet = PacketSocket.open()
        guard packet >= 0 else { throw fail("socket(AF_PACKET, SOCK_RAW)") }
        opened.append(packet)
        guard Self.attach(filter: Self.dhcpRequests, to: packet) == 0 else { throw fail("setsockopt(SO_ATTACH_FILTER)") }
        guard PacketSocket.bindToInterface(packet, ethertype: PacketSocket.ethertypeIPv4, interfaceIndex: index) == 0 else {
            throw fail("bind(AF_PACKET)")
        }
        guard let pipe = PacketSocket.wakeupPipe() else { throw fail("pipe") }

        self.udp = udp
        self.packet = packet
        wakeup = pipe.reader
        wakeupWriter = pipe.writer
        interfaceIndex = index
        interfaceMAC = mac
    }

    deinit {
        close(udp)
        close(packet)
        close(wakeup)
        close(wakeupWriter)
    }

    /// Makes ``waitForRequest(into:)`` return nil from now on.
    func signalStop() {
        var one: UInt8 = 1
        _ = write(wakeupWriter, &one, 1)
    }

    /// Blocks in the kernel until a request frame arrives from another host (its bytes are
    /// written to `buffer`, the count returned) or ``signalStop()`` was called (nil).
    func waitForRequest(into buffer: inout [UInt8]) throws(DHCPServerError) -> Int? {
        while true {
            var fds = [pollfd(fd: packet, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeup, events: Int16(POLLIN), revents: 0)]
            let ready = retryingOnInterrupt { poll(&fds, nfds_t(fds.count), -1) }
            if ready < 0 { throw .systemCall("poll", interface: nil, errno: .current) }
            if fds[1].revents != 0 { return nil }
            guard fds[0].revents != 0 else { continue }
            var source = [UInt8](repeating: 0, count: 20)
            var sourceLength = socklen_t(source.count)
            let count = retryingOnInterrupt {
                buffer.withUnsafeMutableBytes { bytes in
                    source.withUnsafeMutableBytes {
                        recvfrom(packet, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT | MSG_TRUNC),
                                 $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), &sourceLength)
                    }
                }
            }
            if count < 0 {
                let error = Errno.current
                if error.isWouldBlock { continue }  // poll's readiness was stale: no data after all
                throw .systemCall("recvfrom(AF_PACKET)", interface: nil, errno: error)
            }
            // sll_pkttype (offset 10): frames this host sent itself are not requests; a frame
            // larger than the buffer is not a DHCP request this server reads.
            if source[10] == PacketSocket.outgoing || count > buffer.count { continue }
            return count
        }
    }

    /// Sends a complete Ethernet frame out of the interface.
    func send(frame: [UInt8]) throws(DHCPServerError) {
        guard PacketSocket.send(frame, on: packet, ethertype: PacketSocket.ethertypeIPv4, interfaceIndex: interfaceIndex) else {
            throw .systemCall("sendto(AF_PACKET)", interface: nil, errno: .current)
        }
    }

    /// SO_ATTACH_FILTER from asm-generic/socket.h.
    static let attachFilter: Int32 = 26

    /// A classic BPF instruction (struct sock_filter): opcode, jump-if-true, jump-if-false, constant.
    typealias Instruction = (code: UInt16, jt: UInt8, jf: UInt8, k: UInt32)

    /// Accepts Ethernet frames with IPv4, protocol UDP, no fragment bits and destination port 67.
    static let dhcpRequests: [Instruction] = [
        (0x28, 0, 0, 12),         // 0: ldh [12]            ethertype
        (0x15, 0, 8, 0x0800),     // 1: jeq IPv4 ? 2 : drop
        (0x30, 0, 0, 23),         // 2: ldb [23]            IP protocol
        (0x15, 0, 6, 17),         // 3: jeq UDP ? 4 : drop
        (0x28, 0, 0, 20),         // 4: ldh [20]            flags and fragment offset
        (0x45, 4, 0, 0x3FFF),     // 5: jset MF|offset ? drop : 6
        (0xB1, 0, 0, 14),         // 6: ldxb 4*([14]&0xf)   IP header length
        (0x48, 0, 0, 16),         // 7: ldh [x+16]          UDP destination port
        (0x15, 0, 1, 67),         // 8: jeq 67 ? 9 : drop
        (0x06, 0, 0, 0xFFFF),     // 9: ret 65535           accept
        (0x06, 0, 0, 0),          // 10: drop
    ]

    /// Drops every packet (the port-holding UDP socket).
    static let dropEverything: [Instruction] = [(0x06, 0, 0, 0)]

    /// SO_ATTACH_FILTER with `program`; the result of setsockopt.
    static func attach(filter program: [Instruction], to socket: Int32) -> Int32 {
        var code: [UInt8] = []
        for instruction in program {
            withUnsafeBytes(of: instruction.code) { code += $0 }
            code += [instruction.jt, instruction.jf]
            withUnsafeBytes(of: instruction.k) { code += $0 }
        }
        return code.withUnsafeBytes { instructions in
            // struct sock_fprog: unsigned short len; (padding); struct sock_filter *filter.
            var fprog = [UInt8](repeating: 0, count: 16)
            withUnsafeBytes(of: UInt16(program.count)) { fprog.replaceSubrange(0..<2, with: $0) }
            withUnsafeBytes(of: UInt(bitPattern: instructions.baseAddress)) { fprog.replaceSubrange(8..<16, with: $0) }
            return fprog.withUnsafeBytes {
                setsockopt(socket, SOL_SOCKET, attachFilter, $0.baseAddress, socklen_t($0.count))
            }
        }
    }
}
