#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// The transport under ``EtcdClient``: one HTTP/1.1 POST over its own TCP (or TLS) connection, on swift-nio.
///
/// Only what etcd's JSON gateway needs: a request with a body, an answer read as it arrives (chunked
/// or not: a watch is one endless chunked answer). Each exchange has its own connection, closed when
/// its answer ends or its reader stops (task cancelled, iterator dropped), so no pooled connection can
/// go stale. Deliberately without Foundation (issue 15: the config agent links FoundationEssentials only).
struct HTTPConnector: Sendable {
    /// How long a TCP connection may take to be established.
    var connectTimeout: TimeAmount
    /// How long the answer's head may take, from the start of the connection (TLS handshake included).
    var headTimeout: TimeAmount
    /// For `https` endpoints: the CA, the client certificate and key (nil: no TLS configured).
    var tls: NIOSSLContext?

    /// Connects to `endpoint`, sends `POST path` with `body` and `headers`, and returns once the answer's
    /// head has arrived; its body is then read with ``HTTPResponse/nextChunk()``.
    ///
    /// Throws the transport's own errors (`ChannelError`, `NIOConnectionError`, `IOError`, NIOSSL's errors,
    /// ``HTTPTransportError``) for the caller to describe.
    func post(
        to endpoint: EtcdEndpoint,
        path: String,
        headers extra: [(String, String)],
        body: [UInt8]
    ) async throws -> HTTPResponse {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: HTTPClientResponsePart.self)
        let tls: NIOSSLContext?
        if endpoint.secure {
            guard let configured = self.tls else { throw HTTPTransportError.tlsNotConfigured }
            tls = configured
        } else {
            tls = nil
        }
        // SNI cannot carry an IP address (NIOSSL refuses one): for an IP literal NIOSSL checks the connected
        // address against the certificate's IP addresses instead of a host name.
        let serverName = HTTPConnector.isIPAddress(endpoint.host) ? nil : endpoint.host
        let headTimeout = self.headTimeout
        let forwarders = ForwarderRegistry()
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    let forwarder = ResponseForwarder()
                    try channel.pipeline.syncOperations.addHandler(forwarder)
                    forwarders.insert(forwarder, for: channel)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
        } catch {
            continuation.finish()
            throw error
        }
        do {
            // Only the connection that won (a host name may have several addresses, tried at once) feeds the
            // answer's stream: its forwarder is given the stream now, with what happened since the connect
            // (a TLS handshake may already have failed). Found in the registry, not the pipeline: a connection
            // that already closed has an empty pipeline.
            guard let forwarder = forwarders.take(for: channel) else { throw HTTPTransportError.closedBeforeAnswer }
            try await channel.eventLoop.submit {
                continuation.onTermination = { _ in channel.close(promise: nil) }
                forwarder.value.attach(continuation, headTimeout: headTimeout, channel: channel)
            }.get()
        } catch {
            continuation.finish()
            channel.close(promise: nil)
            throw error
        }

        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers.add(name: "Host", value: endpoint.hostHeader)
        head.headers.add(name: "Content-Length", value: String(body.count))
        head.headers.add(name: "Connection", value: "close")
        for (name, value) in extra { head.headers.add(name: name, value: value) }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        // A failed write also ends the answer's stream (the channel closes): the reason is read there.
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)

        var parts = stream.makeAsyncIterator()
        while true {
            guard let part = try await parts.next() else {
                if Task.isCancelled { throw CancellationError() }
                throw HTTPTransportError.closedBeforeAnswer
            }
            if case .head(let responseHead) = part, responseHead.status != .continue {
                return HTTPResponse(status: responseHead.status, parts: parts, channel: channel)
            }
        }
    }

    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return host.withCString { inet_pton(AF_INET, $0, &v4) == 1 || inet_pton(AF_INET6, $0, &v6) == 1 }
    }
}

/// Transport failures that are neither the OS's nor TLS's.
enum HTTPTransportError: Error, Equatable {
    /// No answer's head within ``HTTPConnector/headTimeout``.
    case noAnswer(TimeAmount)
    /// The server closed the connection before the answer's head.
    case closedBeforeAnswer
    /// The server closed the connection in the middle of the answer's body.
    case closedMidAnswer
    /// An answer body larger than the reader's limit.
    case answerTooLarge(limit: Int)
    /// An `https` endpoint but no TLS context (a programming error: ``EtcdClient`` makes one).
    case tlsNotConfigured
}

/// An answer whose head has arrived; its body is read chunk by chunk, as the server sends it.
struct HTTPResponse {
    let status: HTTPResponseStatus
    fileprivate var parts: AsyncThrowingStream<HTTPClientResponsePart, any Error>.Iterator
    let channel: any Channel

    /// The next piece of the body, or nil at its end (then the connection is closed).
    mutating func nextChunk() async throws -> ByteBuffer? {
        while true {
            guard let part = try await parts.next() else {
                if Task.isCancelled { throw CancellationError() }
                throw HTTPTransportError.closedMidAnswer
            }
            switch part {
            case .body(let chunk): return chunk
            case .end:
                channel.close(promise: nil)
                return nil
            case .head: continue
            }
        }
    }

    /// The whole body (at most `limit` bytes).
    mutating func collect(upTo limit: Int) async throws -> [UInt8] {
        var body: [UInt8] = []
        while let chunk = try await nextChunk() {
            guard body.count + chunk.readableBytes <= limit else {
                channel.close(promise: nil)
                throw HTTPTransportError.answerTooLarge(limit: limit)
            }
            body += chunk.readableBytesView
        }
        return body
    }
}

/// The forwarder of each connection one ``HTTPConnector/post(to:path:headers:body:)`` started, by channel.
private final class ForwarderRegistry: Sendable {
    private let forwarders = Mutex<[ObjectIdentifier: NIOLoopBound<ResponseForwarder>]>([:])

    func insert(_ forwarder: ResponseForwarder, for channel: any Channel) {
        let bound = NIOLoopBound(forwarder, eventLoop: channel.eventLoop)
        forwarders.withLock { $0[ObjectIdentifier(channel)] = bound }
    }

    func take(for channel: any Channel) -> NIOLoopBound<ResponseForwarder>? {
        forwarders.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }
}

/// Hands the decoded answer to the reading task; fails it when the head is late or the connection breaks.
///
/// In every connection's pipeline from the start, but silent until ``attach(_:headTimeout:channel:)`` gives it
/// the stream (only the connection that won the connect gets one); what happened before is handed on then.
private final class ResponseForwarder: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias Continuation = AsyncThrowingStream<HTTPClientResponsePart, any Error>.Continuation

    private var continuation: Continuation?
    private var deadline: Scheduled<Void>?
    /// Before ``attach(_:headTimeout:channel:)``: the first error, and whether the connection closed.
    private var earlyError: (any Error)?
    private var closed = false

    func attach(_ continuation: Continuation, headTimeout: TimeAmount, channel: any Channel) {
        if let earlyError {
            continuation.finish(throwing: earlyError)
            return
        }
        if closed {
            continuation.finish(throwing: HTTPTransportError.closedBeforeAnswer)
            return
        }
        self.continuation = continuation
        deadline = channel.eventLoop.scheduleTask(in: headTimeout) {
            continuation.finish(throwing: HTTPTransportError.noAnswer(headTimeout))
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if case .head = part {
            deadline?.cancel()
            deadline = nil
        }
        continuation?.yield(part)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        deadline?.cancel()
        // The first error is the cause; what follows from closing is not.
        if let continuation {
            continuation.finish(throwing: error)
        } else if earlyError == nil {
            earlyError = error
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        closed = true
        continuation?.finish()
        context.fireChannelInactive()
    }
}

extension EtcdEndpoint {
    /// The `Host` header: the host (IPv6 in brackets) and port.
    var hostHeader: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(shownHost):\(port)"
    }
}
