import NetworkTypes

/// The limits that bound one relay's work and memory.
package struct DNSRelayLimits: Sendable, Equatable, Codable {
    /// UDP queries waiting for their answer at once; more are dropped (the client retries).
    package var maxUDPQueries: Int
    /// TCP connections at once; more are closed at once.
    package var maxTCPConnections: Int
    /// The largest query accepted, over UDP or TCP (real queries are a few hundred bytes).
    package var maxQueryBytes: Int
    /// A UDP query without an answer after this long is forgotten; a TCP connection that made
    /// no progress (no query, no answer) for this long is closed.
    package var queryTimeoutMilliseconds: Int

    package init(maxUDPQueries: Int = 64, maxTCPConnections: Int = 16, maxQueryBytes: Int = 4096,
                queryTimeoutMilliseconds: Int = 5000) {
        self.maxUDPQueries = maxUDPQueries
        self.maxTCPConnections = maxTCPConnections
        self.maxQueryBytes = maxQueryBytes
        self.queryTimeoutMilliseconds = queryTimeoutMilliseconds
    }

    /// Bytes one TCP connection may hold toward the client: one answer of the largest size DNS
    /// allows plus its length prefix.
    package static let maxTCPAnswerBuffer = 2 + 65535

    /// The most memory the relay's buffers can hold at once, in bytes: every pending UDP query
    /// and, per TCP connection, a partial query, the queries toward the resolver and one answer.
    /// The 64 KiB receive buffer is shared.
    package var bufferBound: Int {
        maxUDPQueries * maxQueryBytes + maxTCPConnections * (3 * (2 + maxQueryBytes) + Self.maxTCPAnswerBuffer) + 65536
    }
}

/// What one relay does: where it listens, which clients it answers, where it forwards.
package struct DNSRelayConfiguration: Sendable, Equatable, Codable {
    /// The container-side address the VM sends its queries to.
    package var listenAddress: IPv4Address
    /// 53 in production; tests may pick another.
    package var port: UInt16
    /// The container's loopback resolvers (127.0.0.11, 127.0.0.53, …), in resolv.conf order.
    package var upstreams: [IPv4Address]
    package var upstreamPort: UInt16
    /// The VM's addresses: the only sources whose queries are relayed.
    package var clients: [IPv4Address]
    package var limits: DNSRelayLimits

    package init(listenAddress: IPv4Address, port: UInt16 = 53, upstreams: [IPv4Address], upstreamPort: UInt16 = 53,
                clients: [IPv4Address], limits: DNSRelayLimits = DNSRelayLimits()) {
        self.listenAddress = listenAddress
        self.port = port
        self.upstreams = upstreams
        self.upstreamPort = upstreamPort
        self.clients = clients
        self.limits = limits
    }
}

/// Why a query (or a TCP connection) is not relayed.
package enum DNSDropReason: Sendable, Equatable, CustomStringConvertible {
    /// The source is not one of the VM's addresses.
    case foreignSource(IPv4Address)
    /// Too many queries (or connections) in flight.
    case busy(limit: Int)
    /// Shorter than a DNS header.
    case tooShort(Int)
    /// Larger than ``DNSRelayLimits/maxQueryBytes``.
    case tooLarge(Int)
    /// The QR bit says it is an answer: relaying it would let two relays loop.
    case notAQuery

    package var description: String {
        switch self {
        case .foreignSource(let source): "source \(source) is not the VM"
        case .busy(let limit): "\(limit) already in flight"
        case .tooShort(let count): "\(count) bytes is shorter than a DNS header"
        case .tooLarge(let count): "\(count) bytes is larger than a query may be"
        case .notAQuery: "not a query (QR bit set)"
        }
    }
}

/// The relay's decision for one query or connection.
package enum DNSAdmission: Sendable, Equatable {
    /// Forward it; `id` is the query's ID, which the answer must carry.
    case forward(id: UInt16)
    case drop(DNSDropReason)
}

/// The relay's pure decisions: which queries and connections are relayed, and which datagrams
/// from a resolver are the answer to a query. No I/O; ``DNSRelay`` calls exactly these.
package struct DNSRelayPolicy: Sendable {
    package let configuration: DNSRelayConfiguration
    private let clients: Set<IPv4Address>

    package init(configuration: DNSRelayConfiguration) {
        self.configuration = configuration
        clients = Set(configuration.clients)
    }

    /// DNS header: ID (2 bytes), then flags whose top bit is QR (1 = answer).
    package static let headerLength = 12

    /// Whether a UDP datagram from `source` is relayed, with `inFlight` queries already waiting.
    package func admitUDP(_ query: some Collection<UInt8>, from source: IPv4Address, inFlight: Int) -> DNSAdmission {
        guard clients.contains(source) else { return .drop(.foreignSource(source)) }
        guard inFlight < configuration.limits.maxUDPQueries else { return .drop(.busy(limit: configuration.limits.maxUDPQueries)) }
        return check(query)
    }

    /// Whether a TCP connection from `source` is served, with `open` connections already open.
    package func admitTCP(from source: IPv4Address, open: Int) -> DNSDropReason? {
        guard clients.contains(source) else { return .foreignSource(source) }
        guard open < configuration.limits.maxTCPConnections else { return .busy(limit: configuration.limits.maxTCPConnections) }
        return nil
    }

    /// Whether one DNS message (without a TCP length prefix) is a query the relay forwards.
    package func check(_ query: some Collection<UInt8>) -> DNSAdmission {
        let count = query.count
        guard count >= Self.headerLength else { return .drop(.tooShort(count)) }
        guard count <= configuration.limits.maxQueryBytes else { return .drop(.tooLarge(count)) }
        var bytes = query.makeIterator()
        let high = bytes.next()!, low = bytes.next()!, flags = bytes.next()!
        guard flags & 0x80 == 0 else { return .drop(.notAQuery) }
        return .forward(id: UInt16(high) << 8 | UInt16(low))
    }

    /// Whether a datagram from the resolver answers the query with `id`: a whole header, QR set,
    /// the same ID. Anything else is not passed to the VM.
    package static func isAnswer(_ datagram: some Collection<UInt8>, to id: UInt16) -> Bool {
        guard datagram.count >= headerLength else { return false }
        var bytes = datagram.makeIterator()
        let high = bytes.next()!, low = bytes.next()!, flags = bytes.next()!
        return flags & 0x80 != 0 && UInt16(high) << 8 | UInt16(low) == id
    }
}

/// Splits a DNS-over-TCP byte stream (RFC 1035 section 4.2.2, RFC 7766) into messages: each
/// is a two-byte big-endian length and that many bytes. Holds at most one partial message.
package struct DNSStreamFramer: Sendable {
    /// The largest message accepted; a longer length prefix is an error.
    package let maxMessage: Int
    private var pending: [UInt8] = []

    package init(maxMessage: Int) {
        self.maxMessage = maxMessage
    }

    /// A stream that announced a message longer than ``maxMessage``.
    package struct Oversized: Error, Sendable, Equatable {
        package var length: Int
        package init(length: Int) { self.length = length }
    }

    /// Adds received bytes and returns every message they complete, in order.
    package mutating func append(_ bytes: some Collection<UInt8>) throws(Oversized) -> [[UInt8]] {
        var messages: [[UInt8]] = []
        var input = bytes[...]
        while !input.isEmpty {
            if pending.count < 2 {
                let take = min(2 - pending.count, input.count)
                pending += input.prefix(take)
                input = input.dropFirst(take)
                if pending.count < 2 { break }
            }
            let length = Int(pending[0]) << 8 | Int(pending[1])
            guard length <= maxMessage else { throw Oversized(length: length) }
            let take = min(length - (pending.count - 2), input.count)
            pending += input.prefix(take)
            input = input.dropFirst(take)
            if pending.count == length + 2 {
                messages.append(Array(pending[2...]))
                pending.removeAll(keepingCapacity: true)
            }
        }
        return messages
    }

    /// Bytes of a message not yet complete.
    package var bufferedBytes: Int { pending.count }
}

/// Counts the messages in a DNS-over-TCP stream without keeping their bytes (the answers the
/// resolver sends back, which the relay passes on unchanged).
package struct DNSStreamCounter: Sendable, Equatable {
    private var lengthBytes: [UInt8] = []
    private var remaining = 0

    package init() {}

    /// Adds received bytes; returns how many messages they complete.
    package mutating func count(_ bytes: some Collection<UInt8>) -> Int {
        var completed = 0
        var input = bytes[...]
        while !input.isEmpty {
            if remaining > 0 {
                let take = min(remaining, input.count)
                remaining -= take
                input = input.dropFirst(take)
                if remaining == 0 { completed += 1 }
                continue
            }
            lengthBytes.append(input.first!)
            input = input.dropFirst()
            if lengthBytes.count == 2 {
                remaining = Int(lengthBytes[0]) << 8 | Int(lengthBytes[1])
                lengthBytes.removeAll()
                if remaining == 0 { completed += 1 }
            }
        }
        return completed
    }
}
