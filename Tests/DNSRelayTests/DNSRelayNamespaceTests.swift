import DNSRelay
import Foundation
import Logging
import NetworkTypes
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The relay between real namespaces: a "container" whose only resolver is a test server on
/// 127.0.0.11 (as on a Docker user network) and a "VM" namespace joined to it by a veth, with the
/// VM's address and an on-link route to the relay, as the lease gives it. The container has no
/// route to the VM's address, as while kvm-launch runs.
@Suite(.enabled(if: isRoot, needsRootReason), .serialized)
struct DNSRelayNamespaceTests {
    static let relayAddress = IPv4Address(169, 254, 7, 9)
    static let vmAddress = IPv4Address(10, 42, 0, 7)
    /// Another host on the VM's link: its queries must be dropped.
    static let strangerAddress = IPv4Address(10, 42, 0, 8)
    static let resolverAddress = IPv4Address(127, 0, 0, 11)

    struct Fixture: Sendable {
        let container: TestNamespace
        let vm: TestNamespace
        let interface: String

        static func make() throws -> Fixture {
            let (container, vm) = try TestNamespace.pair("dnsrc", "dnsrv")
            let suffix = container.name.split(separator: "-").last!
            let fixture = Fixture(container: container, vm: vm, interface: "dr\(suffix)")
            do {
                try container.addVeth(fixture.interface, peer: vm, peerName: "dv\(suffix)")
                try container.ip("addr add \(relayAddress)/16 dev \(fixture.interface)")
                try container.ip("link set \(fixture.interface) up")
                try vm.ip("addr add \(vmAddress)/24 dev dv\(suffix)")
                try vm.ip("addr add \(strangerAddress)/24 dev dv\(suffix)")
                try vm.ip("link set dv\(suffix) up")
                try vm.ip("route add \(relayAddress)/32 dev dv\(suffix)")
            } catch {
                fixture.destroy()
                throw error
            }
            return fixture
        }

        func destroy() {
            vm.destroy()
            container.destroy()
        }
    }

    /// Keeps the relay's log lines.
    final class LogLines: LogHandler, Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
        var logLevel: Logger.Level { get { .trace } set {} }
        var metadata: Logger.Metadata { get { [:] } set {} }
        subscript(metadataKey key: String) -> Logger.Metadata.Value? { get { nil } set {} }
        func log(event: LogEvent) { lines.withLock { $0.append("\(event.message)") } }

        /// Waits (at most `seconds`) until a line contains `text`.
        func waitFor(_ text: String, seconds: Double = 5) async throws -> Bool {
            for _ in 0..<Int(seconds * 20) {
                if all.contains(where: { $0.contains(text) }) { return true }
                try await Task.sleep(for: .milliseconds(50))
            }
            return false
        }
    }

    /// A fixture with the test resolver and a relay running in the container; always torn down.
    static func withRelay(
        upstreams: [IPv4Address] = [resolverAddress], limits: DNSRelayLimits = DNSRelayLimits(),
        _ body: @Sendable (Fixture, LogLines) async throws -> Void
    ) async throws {
        let fixture = try Fixture.make()
        defer { fixture.destroy() }
        let resolver = try await fixture.container.onThread { try TestResolver(address: "\(resolverAddress)") }
        resolver.start()
        defer { resolver.stop() }
        let log = LogLines()
        let configuration = DNSRelayConfiguration(listenAddress: relayAddress, upstreams: upstreams, clients: [vmAddress], limits: limits)
        let interface = fixture.interface
        let relay = try await fixture.container.onThread {
            try DNSRelay(interfaceName: interface, configuration: configuration, logger: Logger(label: "dns-test") { _ in log })
        }
        let running = Task { try await relay.run() }
        let outcome: Result<Void, any Error>
        do {
            // The relay's task may wait for a pool thread while other suites block theirs; the
            // clients' timeouts are for the relay, not for the test runner.
            guard try await log.waitFor("DNS relay on", seconds: 30) else { throw ResolverError("the relay did not start") }
            outcome = .success(try await body(fixture, log))
        } catch {
            outcome = .failure(error)
        }
        relay.stop()
        try await running.value
        try outcome.get()
    }

    /// Sends `query` from `source` to the relay over UDP; the first datagram back within
    /// `milliseconds`, or nil.
    static func udpExchange(_ fixture: Fixture, _ query: [UInt8], from source: IPv4Address = vmAddress,
                            milliseconds: Int32 = 3000) async throws -> [UInt8]? {
        try await fixture.vm.onThread {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw ResolverError("socket: errno \(errno)") }
            defer { close(fd) }
            guard bindSocket(fd, source, port: 0) == 0 else { throw ResolverError("bind \(source): errno \(errno)") }
            var target = socketAddress(relayAddress, port: 53)
            let sent = query.withUnsafeBytes { bytes in
                withUnsafePointer(to: &target) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            guard sent == query.count else { throw ResolverError("sendto: errno \(errno)") }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, milliseconds) > 0 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            return count > 0 ? Array(buffer[..<count]) : nil
        }
    }

    /// Sends `queries` (length-prefixed, in one write) from `source` to the relay over TCP and
    /// reads `expecting` answers; nil when the relay closes the connection first.
    static func tcpExchange(_ fixture: Fixture, _ queries: [[UInt8]], expecting: Int, from source: IPv4Address = vmAddress) async throws -> [[UInt8]]? {
        try await fixture.vm.onThread {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw ResolverError("socket: errno \(errno)") }
            defer { close(fd) }
            var limit = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            guard bindSocket(fd, source, port: 0) == 0 else { throw ResolverError("bind: errno \(errno)") }
            var target = socketAddress(relayAddress, port: 53)
            let connected = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { throw ResolverError("connect: errno \(errno)") }
            let stream = queries.flatMap { [UInt8($0.count >> 8), UInt8($0.count & 0xFF)] + $0 }
            _ = stream.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            var answers: [[UInt8]] = []
            var pending: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while answers.count < expecting {
                let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count == 0 || (count < 0 && errno == ECONNRESET) { return nil }
                guard count > 0 else { throw ResolverError("recv: errno \(errno)") }
                pending += chunk[..<count]
                while pending.count >= 2, pending.count >= 2 + (Int(pending[0]) << 8 | Int(pending[1])) {
                    let length = Int(pending[0]) << 8 | Int(pending[1])
                    answers.append(Array(pending[2..<2 + length]))
                    pending.removeFirst(2 + length)
                }
            }
            return answers
        }
    }

    // MARK: Tests

    @Test func udpAnswersArePassedBackUnchanged() async throws {
        try await Self.withRelay { fixture, log in
            let query = TestResolver.query("vm-only.test", id: 0xA1B2)
            let answer = try await Self.udpExchange(fixture, query)
            #expect(answer == TestResolver.answer(to: query, overTCP: false), "relay log: \(log.all)")
            #expect(answer.map { $0.count > 12 && $0[7] == 1 } == true, "one A record")
            // Truncated: the TC bit and the echoed EDNS record reach the VM as the resolver sent them.
            let big = TestResolver.query("big.test", id: 0x0BAD)
            let truncated = try await Self.udpExchange(fixture, big)
            #expect(truncated == TestResolver.answer(to: big, overTCP: false))
            #expect(truncated.map { $0[2] & 0x02 != 0 } == true, "TC set")
            let unknown = TestResolver.query("nobody.test", id: 3, edns: false)
            let nxdomain = try await Self.udpExchange(fixture, unknown)
            #expect(nxdomain == TestResolver.answer(to: unknown, overTCP: false))
        }
    }

    @Test func tcpCarriesALargeAnswerAndPipelinedQueries() async throws {
        try await Self.withRelay { fixture, log in
            let big = TestResolver.query("big.test", id: 0x7001)
            let small = TestResolver.query("vm-only.test", id: 0x7002)
            let answers = try await Self.tcpExchange(fixture, [big, small], expecting: 2)
            let expected = try #require(TestResolver.answer(to: big, overTCP: true))
            #expect(expected.count > 512)
            #expect(answers == [expected, TestResolver.answer(to: small, overTCP: true)!], "relay log: \(log.all)")
        }
    }

    /// A real client: busybox's nslookup in the VM namespace asks the relay.
    @Test func busyboxNslookupResolvesThroughTheRelay() async throws {
        try await Self.withRelay { fixture, log in
            // From a thread of its own (in the VM namespace, which the child inherits): a blocking
            // wait on a test-pool thread could starve the relay's task on a busy machine.
            let result = try await fixture.vm.onThread {
                try run(["busybox", "nslookup", "vm-only.test", "\(Self.relayAddress)"], check: false)
            }
            #expect(result.status == 0 && result.stdout.contains("10.99.0.1"), "nslookup: \(result.stdout)\(result.stderr)\nrelay log: \(log.all)")
        }
    }

    @Test func queriesFromOtherSourcesAreDropped() async throws {
        try await Self.withRelay { fixture, log in
            let query = TestResolver.query("vm-only.test", id: 0x5151)
            // Control: the VM's own address is answered on the same link, same relay.
            let control = try await Self.udpExchange(fixture, query)
            #expect(control != nil, "control failed; relay log: \(log.all)")
            let stranger = try await Self.udpExchange(fixture, query, from: Self.strangerAddress, milliseconds: 1000)
            #expect(stranger == nil)
            #expect(log.all.contains { $0.contains("dropped UDP query from \(Self.strangerAddress): source \(Self.strangerAddress) is not the VM") })
            let tcpStranger = try await Self.tcpExchange(fixture, [query], expecting: 1, from: Self.strangerAddress)
            #expect(tcpStranger == nil)
            #expect(log.all.contains { $0.contains("closed TCP connection from \(Self.strangerAddress)") })
        }
    }

    /// Unanswered queries are bounded in number and forgotten after the timeout; then the relay
    /// answers again.
    @Test func inFlightQueriesAreBoundedAndTimeOut() async throws {
        try await Self.withRelay(limits: DNSRelayLimits(maxUDPQueries: 2, queryTimeoutMilliseconds: 300)) { fixture, log in
            for id in UInt16(1)...3 {
                let silence = try await Self.udpExchange(fixture, TestResolver.query("silent.test", id: id), milliseconds: 50)
                #expect(silence == nil)
            }
            let busy = try await log.waitFor("2 already in flight")
            #expect(busy, "relay log: \(log.all)")
            let timedOut = try await log.waitFor("timed out")
            #expect(timedOut, "relay log: \(log.all)")
            let query = TestResolver.query("vm-only.test", id: 9)
            let answer = try await Self.udpExchange(fixture, query)
            #expect(answer == TestResolver.answer(to: query, overTCP: false), "relay log: \(log.all)")
        }
    }

    /// A resolver that refuses (nothing listens on 127.0.0.12) hands the query to the next one.
    @Test func aRefusingResolverFallsBackToTheNext() async throws {
        try await Self.withRelay(upstreams: [IPv4Address(127, 0, 0, 12), Self.resolverAddress]) { fixture, log in
            let query = TestResolver.query("vm-only.test", id: 0x4242)
            let answer = try await Self.udpExchange(fixture, query)
            #expect(answer == TestResolver.answer(to: query, overTCP: false), "relay log: \(log.all)")
        }
    }
}

func socketAddress(_ ip: IPv4Address, port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr = in_addr(s_addr: ip.value.bigEndian)
    return address
}

func bindSocket(_ fd: Int32, _ ip: IPv4Address, port: UInt16) -> Int32 {
    var address = socketAddress(ip, port: port)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}
