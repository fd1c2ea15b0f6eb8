#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetworkTypes

/// The thin OS layer of the server: the three file descriptors it needs and the system calls on
/// them. Everything here is created in the network namespace of the calling thread.
struct DHCPSockets: ~Copyable {
    /// UDP socket bound to 0.0.0.0:67 on the interface: receives requests, sends to relays.
    let udp: Int32
    /// AF_PACKET socket that receives nothing (protocol 0) and sends whole Ethernet frames.
    let packet: Int32
    /// Read end of a pipe that `stop()` writes to, waking the blocked receive loop.
    let wakeup: Int32
    let wakeupWriter: Int32
    let interfaceIndex: Int32
    let interfaceMAC: MACAddress

    init(interfaceName: String) throws(DHCPServerError) {
        let name = interfaceName
        guard !name.isEmpty, name.utf8.count < Int(IFNAMSIZ) else { throw .interfaceNotFound(name) }
        let index = if_nametoindex(name)
        guard index != 0 else { throw .interfaceNotFound(name) }

        var opened: [Int32] = []
        func fail(_ operation: String) -> DHCPServerError {
            let error = DHCPServerError.systemCall(operation, interface: name, errno: errno)
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

        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { buffer in
            for (offset, byte) in name.utf8.enumerated() { buffer[offset] = byte }
        }
        guard ioctl(udp, UInt(SIOCGIFHWADDR), &request) == 0 else { throw fail("ioctl(SIOCGIFHWADDR)") }
        let mac = withUnsafeBytes(of: request.ifr_ifru.ifru_hwaddr.sa_data) { MACAddress(Array($0.prefix(6))) }

        let packet = socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard packet >= 0 else { throw fail("socket(AF_PACKET, SOCK_RAW)") }
        opened.append(packet)

        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else { throw fail("pipe") }
        opened += pipeEnds
        for end in pipeEnds {
            guard fcntl(end, F_SETFD, FD_CLOEXEC) == 0, fcntl(end, F_SETFL, O_NONBLOCK) == 0 else {
                throw fail("fcntl(pipe)")
            }
        }

        self.udp = udp
        self.packet = packet
        wakeup = pipeEnds[0]
        wakeupWriter = pipeEnds[1]
        interfaceIndex = Int32(index)
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

    /// Blocks in the kernel until a datagram arrives (its bytes are written to `buffer`, the
    /// count returned) or ``signalStop()`` was called (nil).
    func waitForRequest(into buffer: inout [UInt8]) throws(DHCPServerError) -> Int? {
        while true {
            var fds = [pollfd(fd: udp, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeup, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                throw .systemCall("poll", interface: nil, errno: errno)
            }
            if fds[1].revents != 0 { return nil }
            guard fds[0].revents != 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(udp, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
                throw .systemCall("recv", interface: nil, errno: errno)
            }
            return count
        }
    }

    /// Sends a complete Ethernet frame out of the interface.
    func send(frame: [UInt8]) throws(DHCPServerError) {
        let address = Self.linkLayerAddress(interfaceIndex: interfaceIndex, destination: Array(frame.prefix(6)))
        let sent = frame.withUnsafeBytes { bytes in
            address.withUnsafeBytes {
                sendto(packet, bytes.baseAddress, bytes.count, 0,
                       $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
            }
        }
        guard sent == frame.count else { throw .systemCall("sendto(AF_PACKET)", interface: nil, errno: errno) }
    }

    /// A `struct sockaddr_ll` (linux/if_packet.h, which the Glibc module does not export):
    /// family, protocol (network order), ifindex, hatype, pkttype, halen, addr[8] — 20 bytes.
    static func linkLayerAddress(interfaceIndex: Int32, destination: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt16(AF_PACKET)) { bytes += $0 }
        withUnsafeBytes(of: UInt16(0x0800).bigEndian) { bytes += $0 }  // ETH_P_IP
        withUnsafeBytes(of: interfaceIndex) { bytes += $0 }
        bytes += [0, 0, 0, UInt8(destination.count)]  // hatype, pkttype: unused when sending
        bytes += destination + Array(repeating: 0, count: 8 - destination.count)
        return bytes
    }

    /// Sends a UDP payload from port 67 to `destination:port` (a relay agent).
    func send(datagram: [UInt8], to destination: IPv4Address, port: UInt16) throws(DHCPServerError) {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr = in_addr(s_addr: destination.value.bigEndian)
        let sent = datagram.withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(udp, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent == datagram.count else { throw .systemCall("sendto(\(destination):\(port))", interface: nil, errno: errno) }
    }
}
