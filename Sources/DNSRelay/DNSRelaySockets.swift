#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetworkTypes
import SystemPackage

/// The thin OS layer of the relay: small wrappers over the socket calls it makes. Sockets are
/// created in the network namespace of the calling thread, non-blocking and close-on-exec.
enum DNSSocket {
    static func address(_ ip: IPv4Address, port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr = in_addr(s_addr: ip.value.bigEndian)
        return address
    }

    static func ip(of address: sockaddr_in) -> IPv4Address {
        IPv4Address(UInt32(bigEndian: address.sin_addr.s_addr))
    }

    /// A non-blocking socket of `type` (SOCK_DGRAM or SOCK_STREAM); -1 on failure (`Errno.current` says why).
    static func open(_ type: __socket_type) -> Int32 {
        socket(AF_INET, Int32(type.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    }

    /// O_NONBLOCK and FD_CLOEXEC on a descriptor made without them (accept, pipe).
    static func makeNonBlocking(_ fd: Int32) -> Int32 {
        guard fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 else { return -1 }
        return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    static func bindTo(_ fd: Int32, _ address: sockaddr_in) -> Int32 {
        var address = address
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    static func connectTo(_ fd: Int32, _ address: sockaddr_in) -> Int32 {
        var address = address
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    static func setFlag(_ fd: Int32, _ option: Int32) -> Int32 {
        var on: Int32 = 1
        return setsockopt(fd, SOL_SOCKET, option, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    static func bindToDevice(_ fd: Int32, _ name: String) -> Int32 {
        name.withCString { setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, $0, socklen_t(strlen($0) + 1)) }
    }

    /// recvfrom into `buffer`; the count (or -1) and the sender.
    static func receiveFrom(_ fd: Int32, into buffer: inout [UInt8]) -> (Int, sockaddr_in) {
        var source = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let count = buffer.withUnsafeMutableBytes { bytes in
            withUnsafeMutablePointer(to: &source) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(fd, bytes.baseAddress, bytes.count, Int32(MSG_TRUNC), $0, &length)
                }
            }
        }
        return (count, source)
    }

    static func sendTo(_ fd: Int32, _ bytes: ArraySlice<UInt8>, to destination: sockaddr_in) -> Int {
        var destination = destination
        return bytes.withUnsafeBytes { payload in
            withUnsafePointer(to: &destination) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, payload.baseAddress, payload.count, Int32(MSG_NOSIGNAL), $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    static func sendStream(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Int {
        bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    static func receiveStream(_ fd: Int32, into buffer: inout [UInt8], limit: Int) -> Int {
        buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min(limit, $0.count), 0) }
    }

    /// The pending error of a socket (a non-blocking connect's outcome); nil when there is none.
    static func pendingError(_ fd: Int32) -> Errno? {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return .current }
        return error == 0 ? nil : Errno(rawValue: error)
    }

    /// A non-blocking call that found nothing to do now (or was interrupted): try again at the next wake-up.
    static func wouldBlock(_ code: Errno) -> Bool {
        code.isWouldBlock || code == .interrupted
    }

    /// CLOCK_MONOTONIC in milliseconds.
    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }
}

/// The relay's listening sockets and the pipe that wakes its loop; closed when released.
final class DNSRelayListeners: Sendable {
    let udp: Int32
    let tcp: Int32
    let wakeup: Int32
    let wakeupWriter: Int32
    /// The network namespace the listeners were made in: the relay's thread enters it, so the
    /// sockets toward the resolvers are made there too.
    let namespace: Int32

    /// UDP and TCP on `listen:port`, bound to `interfaceName` (so answers leave through it even
    /// when the container has no route to the VM's address), and a non-blocking pipe.
    init(interfaceName: String, listenAddress: IPv4Address, port: UInt16) throws(DNSRelayError) {
        var opened: [Int32] = []
        func fail(_ call: String) -> DNSRelayError {
            let error = DNSRelayError.systemCall(call, interface: interfaceName, address: "\(listenAddress):\(port)", errno: .current)
            for fd in opened { close(fd) }
            return error
        }
        let address = DNSSocket.address(listenAddress, port: port)
        let udp = DNSSocket.open(SOCK_DGRAM)
        guard udp >= 0 else { throw fail("socket(SOCK_DGRAM)") }
        opened.append(udp)
        let tcp = DNSSocket.open(SOCK_STREAM)
        guard tcp >= 0 else { throw fail("socket(SOCK_STREAM)") }
        opened.append(tcp)
        for fd in [udp, tcp] {
            guard DNSSocket.setFlag(fd, SO_REUSEADDR) == 0 else { throw fail("setsockopt(SO_REUSEADDR)") }
            guard DNSSocket.bindToDevice(fd, interfaceName) == 0 else { throw fail("setsockopt(SO_BINDTODEVICE)") }
            guard DNSSocket.bindTo(fd, address) == 0 else { throw fail("bind") }
        }
        guard listen(tcp, 16) == 0 else { throw fail("listen") }
        let namespace = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard namespace >= 0 else { throw fail("open(/proc/thread-self/ns/net)") }
        opened.append(namespace)
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else { throw fail("pipe") }
        opened += pipeEnds
        for end in pipeEnds {
            guard DNSSocket.makeNonBlocking(end) == 0 else { throw fail("fcntl") }
        }
        self.udp = udp
        self.tcp = tcp
        self.namespace = namespace
        wakeup = pipeEnds[0]
        wakeupWriter = pipeEnds[1]
    }

    func signalStop() {
        var one: UInt8 = 1
        _ = write(wakeupWriter, &one, 1)
    }

    deinit {
        for fd in [udp, tcp, wakeup, wakeupWriter, namespace] { close(fd) }
    }
}
