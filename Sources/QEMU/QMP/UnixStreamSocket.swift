#if canImport(Glibc)
import Glibc
#endif
import NetworkTypes
import SystemPackage

/// A blocking AF_UNIX stream socket with send/receive timeouts: the thin OS layer
/// under ``QMPClient``. Not thread-safe; ``QMPClient`` serializes access.
final class UnixStreamSocket {
    let fd: Int32

    /// Connects to `path` (`@NAME`: an abstract socket, see ``QMPAddress``), with `timeout` applied
    /// to every later read and write.
    init(connectingTo path: String, timeout: Duration) throws(QMPError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let (pathBytes, addressLength) = QMPAddress(path).socketAddressBytes()
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count <= capacity else { throw .socketPathTooLong(path) }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: pathBytes)
        }

        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .connectFailed(path: path, errno: .current) }

        let (seconds, attoseconds) = timeout.components
        var interval = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        if interval.tv_sec == 0 && interval.tv_usec == 0 { interval.tv_usec = 1 }
        let length = socklen_t(MemoryLayout<timeval>.size)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &interval, length)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &interval, length)

        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(addressLength))
            }
        }
        guard result == 0 else {
            let failure = Errno.current
            close(fd)
            throw .connectFailed(path: path, errno: failure)
        }
        self.fd = fd
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws(QMPError) {
        var sent = 0
        while sent < bytes.count {
            let count = retryingOnInterrupt {
                bytes.withUnsafeBytes { buffer in
                    Glibc.send(fd, buffer.baseAddress! + sent, buffer.count - sent, Int32(MSG_NOSIGNAL))
                }
            }
            if count < 0 {
                if Errno.current.isWouldBlock { throw .timedOut }
                throw .connectionClosed
            }
            sent += count
        }
    }

    /// Reads what is available (at least one byte); an empty result means end of stream.
    func receive() throws(QMPError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = retryingOnInterrupt { buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
        if count < 0 {
            if Errno.current.isWouldBlock { throw .timedOut }
            return []
        }
        return Array(buffer[0..<count])
    }
}

extension QMPClient {
    /// Whether something listens at `path` (`@NAME`: an abstract socket) right now: a connection
    /// attempt that is accepted or queued. Used before a launch to refuse a QMP name that another
    /// QEMU already serves. Sends nothing.
    package static func isListening(at path: String) -> Bool {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let (pathBytes, addressLength) = QMPAddress(path).socketAddressBytes()
        guard pathBytes.count <= MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes) }
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(addressLength)) }
        }
        // EAGAIN: the listener's backlog is full, which still means someone listens.
        return result == 0 || Errno.current == .resourceTemporarilyUnavailable
    }
}
