import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A tiny authoritative DNS server for the tests, standing in for Docker's embedded resolver on
/// 127.0.0.11 inside the fixture's container namespace. Its answers are a pure function of the
/// query (``answer(to:overTCP:)``), so a client can tell whether what it received is exactly what
/// the server sent.
///
/// Used by the DNS relay's namespace tests and the end-to-end test with the real guest.
///
/// Names: `vm-only.test` A → 10.99.0.1 (one record); `big.test` A → 40 records (676 bytes): over
/// UDP the answer is truncated (TC set, no records), over TCP it is whole; `silent.test` is never
/// answered; anything else is NXDOMAIN. An EDNS OPT record in the query is echoed.
package final class TestResolver: Sendable {
    let udp: Int32
    let tcp: Int32
    let wakeup: Int32
    let wakeupWriter: Int32
    /// Queries received, over either transport.
    package let received = Atomic<Int>(0)

    package static let bigRecords = 40

    /// Binds UDP and TCP `address:53` (dotted IPv4) in the calling thread's network namespace.
    package init(address: String) throws {
        var sockaddr = sockaddr_in()
        sockaddr.sin_family = sa_family_t(AF_INET)
        sockaddr.sin_port = UInt16(53).bigEndian
        guard inet_pton(AF_INET, address, &sockaddr.sin_addr) == 1 else { throw ResolverError("not an IPv4 address: \(address)") }
        udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        tcp = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var ends: [Int32] = [-1, -1]
        guard udp >= 0, tcp >= 0, pipe(&ends) == 0 else { throw ResolverError("sockets: errno \(errno)") }
        wakeup = ends[0]
        wakeupWriter = ends[1]
        var on: Int32 = 1
        for fd in [udp, tcp] {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
            let bound = withUnsafePointer(to: &sockaddr) {
                $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { throw ResolverError("bind \(address):53: errno \(errno)") }
        }
        guard listen(tcp, 8) == 0 else { throw ResolverError("listen: errno \(errno)") }
    }

    deinit {
        for fd in [udp, tcp, wakeup, wakeupWriter] { close(fd) }
    }

    /// Serves on a thread of its own until ``stop()``.
    package func start() {
        Thread { [self] in serve() }.start()
    }

    package func stop() {
        var one: UInt8 = 1
        _ = write(wakeupWriter, &one, 1)
    }

    private func serve() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var fds = [pollfd(fd: udp, events: Int16(POLLIN), revents: 0), pollfd(fd: tcp, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeup, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 3, -1) >= 0 || errno == EINTR else { return }
            if fds[2].revents != 0 { return }
            if fds[0].revents != 0 {
                var source = sockaddr_in()
                var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                let count = buffer.withUnsafeMutableBytes { bytes in
                    withUnsafeMutablePointer(to: &source) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(udp, bytes.baseAddress, bytes.count, 0, $0, &length) }
                    }
                }
                if count > 0 {
                    received.add(1, ordering: .relaxed)
                    if let answer = Self.answer(to: Array(buffer[..<count]), overTCP: false) {
                        _ = answer.withUnsafeBytes { bytes in
                            withUnsafePointer(to: &source) {
                                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(udp, bytes.baseAddress, bytes.count, 0, $0, length) }
                            }
                        }
                    }
                }
            }
            if fds[1].revents != 0 {
                let connection = accept(tcp, nil, nil)
                if connection >= 0 { serveConnection(connection) }
            }
        }
    }

    /// Answers length-prefixed queries on one connection until the client closes it (2 s idle limit).
    private func serveConnection(_ fd: Int32) {
        defer { close(fd) }
        var limit = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        while let prefix = readExactly(fd, 2), let query = readExactly(fd, Int(prefix[0]) << 8 | Int(prefix[1])) {
            received.add(1, ordering: .relaxed)
            guard let answer = Self.answer(to: query, overTCP: true) else { continue }
            let framed = [UInt8(answer.count >> 8), UInt8(answer.count & 0xFF)] + answer
            _ = framed.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }

    private func readExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + filled, count - filled, 0) }
            if got <= 0 { return nil }
            filled += got
        }
        return bytes
    }

    /// The question's name (dotted), type, and the offset just past the question; nil when malformed.
    static func question(of query: [UInt8]) -> (name: String, type: UInt16, end: Int)? {
        guard query.count >= 12 else { return nil }
        var labels: [String] = []
        var offset = 12
        while offset < query.count {
            let length = Int(query[offset])
            offset += 1
            if length == 0 { break }
            guard length < 64, offset + length <= query.count else { return nil }
            labels.append(String(decoding: query[offset..<offset + length], as: UTF8.self))
            offset += length
        }
        guard offset + 4 <= query.count else { return nil }
        return (labels.joined(separator: "."), UInt16(query[offset]) << 8 | UInt16(query[offset + 1]), offset + 4)
    }

    /// The answer the server sends, or nil for silence.
    package static func answer(to query: [UInt8], overTCP: Bool) -> [UInt8]? {
        guard let (name, type, end) = question(of: query), name != "silent.test" else { return nil }
        let additional = UInt16(query[10]) << 8 | UInt16(query[11])
        var records: [[UInt8]] = []
        var truncated = false
        var code: UInt8 = 0
        func a(_ octets: [UInt8]) -> [UInt8] {
            [0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4] + octets  // name pointer, A, IN, TTL 60, 4 bytes
        }
        switch name {
        case "vm-only.test":
            if type == 1 { records = [a([10, 99, 0, 1])] }
        case "big.test":
            if type == 1 {
                if overTCP { records = (0..<bigRecords).map { a([10, 99, 1, UInt8($0)]) } } else { truncated = true }
            }
        default:
            code = 3
        }
        // QR, the query's opcode and RD, AA; TC when truncated; RA and the response code.
        let flags0 = 0x80 | (query[2] & 0x79) | 0x04 | (truncated ? 0x02 : 0)
        var answer = [query[0], query[1], flags0, 0x80 | code, 0, 1, UInt8(records.count >> 8), UInt8(records.count & 0xFF), 0, 0,
                      UInt8(additional >> 8), UInt8(additional & 0xFF)]
        answer += query[12..<end]
        for record in records { answer += record }
        if additional > 0 { answer += query[end...] }  // the OPT record, echoed
        return answer
    }

    /// A query for `name` and `type` with `id`, RD set, and an EDNS OPT record (UDP size 1232)
    /// when `edns`.
    package static func query(_ name: String, type: UInt16 = 1, id: UInt16, edns: Bool = true) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0, 0, 1, 0, 0, 0, 0, 0, edns ? 1 : 0]
        for label in name.split(separator: ".") { bytes += [UInt8(label.utf8.count)] + Array(label.utf8) }
        bytes += [0, UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
        if edns { bytes += [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0] }  // root, OPT, size 1232, no flags, no data
        return bytes
    }
}

package struct ResolverError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}
