#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Logging
import Netlink
import NetworkTypes
import SystemPackage
import Synchronization

/// Relays the VM's DNS queries to the container's loopback resolvers (Docker's 127.0.0.11,
/// systemd-resolved's 127.0.0.53), which the VM cannot reach itself.
///
/// It listens on UDP and TCP port 53 of the container-side address of one attached interface,
/// bound to that device. A UDP query from one of the VM's addresses is sent to the first
/// resolver from a socket of its own (a fresh source port per query); the datagram that comes
/// back with the query's ID and the QR bit is passed to the VM byte for byte (ID, truncation
/// bit, EDNS and all). A TCP connection from the VM is joined to a new TCP connection to the
/// resolver; the VM's stream is checked message by message (queries only, bounded size) and the
/// resolver's answers go back unchanged. Everything else is dropped. ``DNSRelayLimits`` bounds
/// the queries and connections in flight, the memory they hold and how long each may take.
///
/// The loop runs on a dedicated thread blocked in `poll`; ``run()`` returns when ``stop()`` is
/// called or its task is cancelled.
package final class DNSRelay: Sendable {
    package let interfaceName: String
    package let configuration: DNSRelayConfiguration
    private let listeners: DNSRelayListeners
    private let logger: Logger
    private let started = Atomic<Bool>(false)

    /// Opens the listening sockets on `interfaceName` in the current thread's network namespace.
    /// Throws when the configuration has no resolver or no client, or a socket cannot be opened
    /// (the address is not on the interface, port 53 is taken, no CAP_NET_BIND_SERVICE).
    package init(interfaceName: String, configuration: DNSRelayConfiguration, logger: Logger) throws(DNSRelayError) {
        guard !configuration.upstreams.isEmpty else { throw .noResolver }
        guard !configuration.clients.isEmpty else { throw .noClient }
        self.interfaceName = interfaceName
        self.configuration = configuration
        listeners = try DNSRelayListeners(interfaceName: interfaceName, listenAddress: configuration.listenAddress,
                                          port: configuration.port)
        var logger = logger
        logger[metadataKey: "interface"] = "\(interfaceName)"
        self.logger = logger
    }

    /// Relays until ``stop()`` is called or the task is cancelled; throws ``DNSRelayError`` when
    /// waiting on the sockets fails. A relay runs once (``DNSRelayError/alreadyRunning(_:)``).
    package func run() async throws {
        guard started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            throw DNSRelayError.alreadyRunning(interfaceName)
        }
        let upstreams = configuration.upstreams.map(\.description).joined(separator: ", ")
        logger.info("DNS relay on \(configuration.listenAddress):\(configuration.port) for \(configuration.clients.map(\.description).joined(separator: ", ")) to \(upstreams)")
        try await runOnDedicatedThread(named: "dns-\(interfaceName)", stop: { [self] in stop() }) { [self] in
            var loop = DNSRelayLoop(listeners: listeners, policy: DNSRelayPolicy(configuration: configuration), logger: logger)
            // The namespace `init` ran in, where the resolvers are.
            try NetworkNamespace.run(inNamespaceAt: "/proc/self/fd/\(listeners.namespace)") { try loop.run() }
        }
        logger.info("DNS relay stopped")
    }

    /// Stops a running relay; called before ``run()``, makes it return at once. Safe from any thread.
    package func stop() {
        listeners.signalStop()
    }
}

/// Why the relay could not start or stopped.
package enum DNSRelayError: Error, Sendable, CustomStringConvertible {
    case noResolver
    case noClient
    case systemCall(String, interface: String, address: String, errno: Errno)
    case alreadyRunning(String)

    package var description: String {
        switch self {
        case .noResolver:
            "DNS relay: no resolver to relay to"
        case .noClient:
            "DNS relay: no VM address to accept queries from"
        case .systemCall(let call, let interface, let address, let code):
            "DNS relay on \(interface) (\(address)): \(call) failed: \(code) (errno \(code.rawValue))\(Self.hint(code))"
        case .alreadyRunning(let name):
            "DNS relay on \(name) was already started; create a new DNSRelay to relay again"
        }
    }

    private static func hint(_ code: Errno) -> String {
        switch code {
        case .addressInUse: "; is another DNS server (dnsmasq?) listening on port 53 in the container? Set DNS_SERVERS to hand out name servers without the relay"
        case .addressNotAvailable: "; the container-side address is not on the interface"
        case .notPermitted, .permissionDenied: "; the launcher needs CAP_NET_BIND_SERVICE (run the container privileged)"
        default: ""
        }
    }
}

/// One UDP query waiting for its answer.
private struct PendingQuery {
    var socket: Int32
    var client: sockaddr_in
    var id: UInt16
    var query: [UInt8]
    var upstream: Int
    var deadline: Int64
}

/// One TCP connection from the VM joined to one toward the resolver.
private final class Conversation {
    let client: Int32
    var upstream: Int32 = -1
    var connected = false
    var toUpstream: [UInt8] = []
    var toClient: [UInt8] = []
    var framer: DNSStreamFramer
    var answers = DNSStreamCounter()
    var outstanding = 0
    var clientDone = false
    var upstreamDone = false
    var deadline: Int64

    init(client: Int32, maxQuery: Int, deadline: Int64) {
        self.client = client
        framer = DNSStreamFramer(maxMessage: maxQuery)
        self.deadline = deadline
    }

    /// Nothing more can happen: the client hung up with every answer delivered, or the resolver
    /// hung up and what it sent is delivered.
    var finished: Bool {
        toClient.isEmpty && ((clientDone && outstanding == 0) || upstreamDone)
    }
}

/// The relay's event loop, confined to the relay's thread.
private struct DNSRelayLoop {
    let listeners: DNSRelayListeners
    let policy: DNSRelayPolicy
    let logger: Logger
    var queries: [PendingQuery] = []
    var conversations: [Conversation] = []
    var buffer = [UInt8](repeating: 0, count: 65536)

    init(listeners: DNSRelayListeners, policy: DNSRelayPolicy, logger: Logger) {
        self.listeners = listeners
        self.policy = policy
        self.logger = logger
    }

    var limits: DNSRelayLimits { policy.configuration.limits }
    var timeout: Int64 { Int64(limits.queryTimeoutMilliseconds) }

    mutating func run() throws(DNSRelayError) {
        defer {
            for query in queries { close(query.socket) }
            for conversation in conversations { closeSockets(of: conversation) }
        }
        while true {
            // Listeners, wake-up pipe, one entry per pending query, two per conversation.
            var fds = [pollfd(fd: listeners.udp, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: listeners.tcp, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: listeners.wakeup, events: Int16(POLLIN), revents: 0)]
            for query in queries { fds.append(pollfd(fd: query.socket, events: Int16(POLLIN), revents: 0)) }
            for conversation in conversations {
                var clientEvents: Int32 = 0
                if !conversation.clientDone && conversation.toUpstream.count < 2 * (2 + limits.maxQueryBytes) { clientEvents |= POLLIN }
                if !conversation.toClient.isEmpty { clientEvents |= POLLOUT }
                fds.append(pollfd(fd: conversation.client, events: Int16(clientEvents), revents: 0))
                var upstreamEvents: Int32 = 0
                if !conversation.connected || !conversation.toUpstream.isEmpty { upstreamEvents |= POLLOUT }
                if conversation.connected && !conversation.upstreamDone && conversation.toClient.count < DNSRelayLimits.maxTCPAnswerBuffer {
                    upstreamEvents |= POLLIN
                }
                fds.append(pollfd(fd: conversation.upstream, events: Int16(upstreamEvents), revents: 0))
            }
            let nextDeadline = (queries.map(\.deadline) + conversations.map(\.deadline)).min()
            // What is left until the first deadline, computed again when a signal cut the wait short.
            let ready = retryingOnInterrupt {
                poll(&fds, nfds_t(fds.count), nextDeadline.map { Int32(clamping: max(0, $0 - DNSSocket.now())) } ?? -1)
            }
            if ready < 0 { throw .systemCall("poll", interface: "", address: "", errno: .current) }
            if fds[2].revents != 0 { return }

            // Work on what poll saw, by position, before the lists change.
            let pendingBefore = queries.count
            var answered: [Int] = []
            for index in 0..<pendingBefore where fds[3 + index].revents != 0 {
                answered.append(index)
            }
            var conversationEvents: [(Conversation, Int16, Int16)] = []
            for (offset, conversation) in conversations.enumerated() {
                let base = 3 + pendingBefore + 2 * offset
                conversationEvents.append((conversation, fds[base].revents, fds[base + 1].revents))
            }
            for index in answered.reversed() { receiveAnswer(at: index) }
            for (conversation, clientEvents, upstreamEvents) in conversationEvents {
                service(conversation, clientEvents: clientEvents, upstreamEvents: upstreamEvents)
            }
            if fds[0].revents != 0 { receiveQueries() }
            if fds[1].revents != 0 { acceptConnections() }
            expire(now: DNSSocket.now())
        }
    }

    // MARK: UDP

    /// Reads every waiting datagram on the UDP listener (at most 64 per wake-up).
    mutating func receiveQueries() {
        for _ in 0..<64 {
            let (count, source) = DNSSocket.receiveFrom(listeners.udp, into: &buffer)
            if count < 0 { return }
            let from = DNSSocket.ip(of: source)
            // A datagram longer than the buffer was cut (MSG_TRUNC gives its real length); the
            // buffer is far larger than any query admitted, so the policy drops it as too large.
            let received = buffer[..<min(count, buffer.count)]
            switch policy.admitUDP(received, from: from, inFlight: queries.count) {
            case .drop(let reason):
                logger.debug("dropped UDP query from \(from): \(reason)")
            case .forward(let id):
                forward(PendingQuery(socket: -1, client: source, id: id, query: Array(received), upstream: 0,
                                     deadline: DNSSocket.now() + timeout))
            }
        }
    }

    /// Sends a query to its resolver (or the next one when that fails) from a fresh socket.
    mutating func forward(_ pending: PendingQuery) {
        var pending = pending
        let upstreams = policy.configuration.upstreams
        while pending.upstream < upstreams.count {
            let fd = DNSSocket.open(SOCK_DGRAM)
            guard fd >= 0 else {
                logger.warning("DNS relay: socket failed: \(Errno.current); query dropped")
                return
            }
            let target = DNSSocket.address(upstreams[pending.upstream], port: policy.configuration.upstreamPort)
            if DNSSocket.connectTo(fd, target) == 0, DNSSocket.sendStream(fd, pending.query[...]) == pending.query.count {
                pending.socket = fd
                queries.append(pending)
                return
            }
            logger.debug("resolver \(upstreams[pending.upstream]) refused a query: \(Errno.current)")
            close(fd)
            pending.upstream += 1
        }
    }

    /// Reads what came back for the query at `index`: the answer goes to the VM unchanged; a
    /// refusal (ICMP port unreachable) moves the query to the next resolver.
    mutating func receiveAnswer(at index: Int) {
        var pending = queries[index]
        let count = DNSSocket.receiveStream(pending.socket, into: &buffer, limit: buffer.count)
        if count < 0 {
            let error = Errno.current
            if DNSSocket.wouldBlock(error) { return }
            logger.debug("resolver \(policy.configuration.upstreams[pending.upstream]) failed: \(error)")
            close(pending.socket)
            queries.remove(at: index)
            pending.upstream += 1
            forward(pending)
            return
        }
        guard DNSRelayPolicy.isAnswer(buffer[..<count], to: pending.id) else {
            logger.debug("ignored a datagram from the resolver that does not answer query \(pending.id)")
            return
        }
        let sent = DNSSocket.sendTo(listeners.udp, buffer[..<count], to: pending.client)
        if sent != count {
            logger.debug("answer to \(DNSSocket.ip(of: pending.client)) not sent: \(Errno.current)")
        }
        close(pending.socket)
        queries.remove(at: index)
    }

    // MARK: TCP

    mutating func acceptConnections() {
        for _ in 0..<16 {
            var source = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let fd = withUnsafeMutablePointer(to: &source) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    accept(listeners.tcp, $0, &length)
                }
            }
            if fd < 0 { return }
            guard DNSSocket.makeNonBlocking(fd) == 0 else {
                close(fd)
                continue
            }
            let from = DNSSocket.ip(of: source)
            if let reason = policy.admitTCP(from: from, open: conversations.count) {
                logger.debug("closed TCP connection from \(from): \(reason)")
                close(fd)
                continue
            }
            let conversation = Conversation(client: fd, maxQuery: limits.maxQueryBytes, deadline: DNSSocket.now() + timeout)
            conversation.upstream = DNSSocket.open(SOCK_STREAM)
            let target = DNSSocket.address(policy.configuration.upstreams[0], port: policy.configuration.upstreamPort)
            guard conversation.upstream >= 0,
                  DNSSocket.connectTo(conversation.upstream, target) == 0 || Errno.current == .nowInProgress else {
                logger.debug("TCP to resolver \(policy.configuration.upstreams[0]) failed: \(Errno.current)")
                closeSockets(of: conversation)
                continue
            }
            conversations.append(conversation)
        }
    }

    /// Moves bytes for one conversation as far as the sockets allow; closes it when it is done
    /// or broken.
    mutating func service(_ conversation: Conversation, clientEvents: Int16, upstreamEvents: Int16) {
        guard conversations.contains(where: { $0 === conversation }) else { return }
        let broken = Int16(POLLERR | POLLNVAL)
        var healthy = clientEvents & broken == 0
        if healthy && !conversation.connected && upstreamEvents != 0 {
            let error = DNSSocket.pendingError(conversation.upstream)
            if let error {
                logger.debug("TCP to resolver \(policy.configuration.upstreams[0]) failed: \(error)")
                healthy = false
            } else {
                conversation.connected = true
            }
        }
        if healthy && clientEvents & Int16(POLLIN | POLLHUP) != 0 { healthy = readClient(conversation) }
        if healthy && conversation.connected && upstreamEvents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
            healthy = readUpstream(conversation)
        }
        if healthy && conversation.connected && !conversation.toUpstream.isEmpty {
            healthy = flush(&conversation.toUpstream, to: conversation.upstream)
        }
        if healthy && !conversation.toClient.isEmpty {
            healthy = flush(&conversation.toClient, to: conversation.client)
        }
        if !healthy || conversation.finished { remove(conversation) }
    }

    /// Reads the VM's stream; every complete message must be a query. False: close.
    func readClient(_ conversation: Conversation) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 2 + limits.maxQueryBytes)
        let count = DNSSocket.receiveStream(conversation.client, into: &chunk, limit: chunk.count)
        if count < 0 { return DNSSocket.wouldBlock(.current) }
        if count == 0 {
            conversation.clientDone = true
            return true
        }
        let messages: [[UInt8]]
        do {
            messages = try conversation.framer.append(chunk[..<count])
        } catch {
            logger.debug("closed TCP connection: a \(error.length)-byte message is larger than a query may be")
            return false
        }
        for message in messages {
            guard case .forward = policy.check(message) else {
                logger.debug("closed TCP connection: \(policy.check(message))")
                return false
            }
            conversation.toUpstream += [UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message
            conversation.outstanding += 1
        }
        conversation.deadline = DNSSocket.now() + timeout
        return true
    }

    /// Reads the resolver's answers into the VM's buffer, unchanged.
    mutating func readUpstream(_ conversation: Conversation) -> Bool {
        let room = DNSRelayLimits.maxTCPAnswerBuffer - conversation.toClient.count
        guard room > 0 else { return true }
        let count = DNSSocket.receiveStream(conversation.upstream, into: &buffer, limit: room)
        if count < 0 { return DNSSocket.wouldBlock(.current) }
        if count == 0 {
            conversation.upstreamDone = true
            return true
        }
        conversation.toClient += buffer[..<count]
        conversation.outstanding = max(0, conversation.outstanding - conversation.answers.count(buffer[..<count]))
        conversation.deadline = DNSSocket.now() + timeout
        return true
    }

    /// Sends as much of `bytes` as the socket takes. False: the peer is gone.
    func flush(_ bytes: inout [UInt8], to fd: Int32) -> Bool {
        let sent = DNSSocket.sendStream(fd, bytes[...])
        if sent < 0 { return DNSSocket.wouldBlock(.current) }
        bytes.removeFirst(sent)
        return true
    }

    // MARK: Housekeeping

    mutating func expire(now: Int64) {
        for index in queries.indices.reversed() where queries[index].deadline <= now {
            logger.debug("query \(queries[index].id) from \(DNSSocket.ip(of: queries[index].client)) timed out")
            close(queries[index].socket)
            queries.remove(at: index)
        }
        for conversation in conversations where conversation.deadline <= now {
            logger.debug("TCP connection idle for \(timeout) ms: closed")
            remove(conversation)
        }
    }

    mutating func remove(_ conversation: Conversation) {
        closeSockets(of: conversation)
        conversations.removeAll { $0 === conversation }
    }

    func closeSockets(of conversation: Conversation) {
        close(conversation.client)
        if conversation.upstream >= 0 { close(conversation.upstream) }
    }
}
