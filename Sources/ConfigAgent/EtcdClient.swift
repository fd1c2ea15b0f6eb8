#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A small etcd v3 client over etcd's JSON gateway: range, transaction, watch.
///
/// - Endpoints are tried in order, starting with the last one that answered;
///   one that cannot be reached (refused, timed out, TLS failure, not an etcd
///   gateway, no leader) is skipped and the next one tried. When all fail the
///   error lists every endpoint with its reason.
/// - With credentials, each endpoint gets a token from `/v3/auth/authenticate`
///   (etcd's simple tokens are per member), sent as the `Authorization` header
///   and renewed once when etcd calls it invalid.
/// - HTTP/1.1 on swift-nio (``HTTPConnector``), one connection per exchange. Call ``shutdown()`` when
///   done, or use ``withClient(settings:logger:_:)``.
package final class EtcdClient: Sendable {
    package let settings: EtcdSettings
    /// Each exchange's answer head must come within ``EtcdSettings/requestTimeout``; a watch's body
    /// has no limit after that (a watch may stay quiet for hours).
    private let http: HTTPConnector
    private let session = Session()
    private let logger: Logger

    /// Creates a client; loads the TLS files now so that a bad file is reported up front.
    package init(settings: EtcdSettings, logger: Logger = Logger(label: "kvm-launch.config.etcd")) throws {
        self.settings = settings
        self.logger = logger
        var tls: NIOSSLContext?
        if settings.endpoints.contains(where: \.secure) || settings.tls != EtcdSettings.TLSFiles() {
            tls = try EtcdClient.makeTLSContext(settings.tls)
        }
        http = HTTPConnector(
            connectTimeout: settings.connectTimeout.timeAmount,
            headTimeout: settings.requestTimeout.timeAmount,
            tls: tls
        )
    }

    /// Ends the client. Every exchange has its own connection, closed when its answer ends or its
    /// task is cancelled, so nothing is left open here; kept so that callers need not know.
    package func shutdown() async throws {}

    /// Runs `body` with a client that is shut down afterwards, also when `body` throws.
    @discardableResult
    package static func withClient<Result: Sendable>(
        settings: EtcdSettings,
        logger: Logger = Logger(label: "kvm-launch.config.etcd"),
        _ body: (EtcdClient) async throws -> Result
    ) async throws -> Result {
        let client = try EtcdClient(settings: settings, logger: logger)
        let result: Result
        do {
            result = try await body(client)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        return result
    }

    // MARK: - KV

    /// Reads every key in `range` at `revision` (nil: the latest), sorted by key.
    package func range(_ range: EtcdKeyRange, revision: Int64? = nil, keysOnly: Bool = false) async throws -> EtcdSnapshot {
        let request = WireRangeRequest(
            key: WireBase64.encode(range.key),
            range_end: range.end.map(WireBase64.encode),
            revision: revision.map(WireInt64.init),
            keys_only: keysOnly ? true : nil
        )
        let (response, endpoint) = try await call("/v3/kv/range", request, as: WireRangeResponse.self)
        var keyValues: [EtcdKeyValue] = []
        keyValues.reserveCapacity(response.kvs?.count ?? 0)
        for wire in response.kvs ?? [] {
            guard let key = WireBase64.decode(wire.key), let value = WireBase64.decode(wire.value) else {
                throw EtcdError.rejected(endpoint: endpoint, message: "answer holds a key or value that is not base64")
            }
            keyValues.append(EtcdKeyValue(key: key, value: value, modRevision: wire.mod_revision?.value ?? 0))
        }
        return EtcdSnapshot(revision: response.header?.revision?.value ?? 0, keyValues: keyValues)
    }

    /// Runs `operations` atomically if every condition holds.
    ///
    /// Each level of nesting must respect the server's `--max-txn-ops`; see ``TransactionLayout``.
    package func transaction(conditions: [EtcdCondition] = [], operations: [EtcdOperation]) async throws -> EtcdTransactionResult {
        let request = WireTxnRequest(
            compare: conditions.isEmpty ? nil : conditions.map(EtcdClient.wire),
            success: operations.map(EtcdClient.wire)
        )
        let (response, _) = try await call("/v3/kv/txn", request, as: WireTxnResponse.self)
        return EtcdTransactionResult(
            succeeded: response.succeeded ?? false,
            revision: response.header?.revision?.value ?? 0,
            deleted: EtcdClient.deletedCount(response)
        )
    }

    /// Puts one key (used by tests and the benchmark's naive baseline).
    package func put(key: [UInt8], value: [UInt8]) async throws -> Int64 {
        try await transaction(operations: [.put(key: key, value: value)]).revision
    }

    // MARK: - Watch

    /// Watches `range` from `revision` on, calling `onBatch` for each message with events.
    ///
    /// Returns only by throwing: ``EtcdError/watchEnded(endpoint:reason:)`` when the
    /// stream breaks (e.g. etcd restarted), ``EtcdError/watchCompacted(endpoint:compactRevision:)``
    /// when `revision` is no longer available, `CancellationError` when the task is
    /// cancelled, or what `onBatch` throws. Callers restart from a fresh read.
    package func watch(
        _ range: EtcdKeyRange,
        from revision: Int64,
        onBatch: (EtcdWatchBatch) async throws -> Void
    ) async throws -> Never {
        let payload = try JSONEncoder().encode(
            WireWatchCreate(
                create_request: .init(
                    key: WireBase64.encode(range.key),
                    range_end: range.end.map(WireBase64.encode),
                    start_revision: WireInt64(revision)
                )
            )
        )
        var failures: [EtcdEndpointFailure] = []
        for index in await session.order(count: settings.endpoints.count) {
            let endpoint = settings.endpoints[index]
            let response: HTTPResponse
            do {
                // Not under ``withinDeadline(_:_:)``: cancelling the task that opened the stream would end it.
                // Until the answer's head arrives the request's own deadline (ETCD_TIMEOUT) holds.
                response = try await exchange(index, "/v3/watch", payload)
            } catch let down as EndpointDown {
                failures.append(EtcdEndpointFailure(endpoint: endpoint.url, reason: down.reason))
                continue
            }
            await session.succeeded(index)
            logger.debug("etcd watch open", metadata: ["endpoint": "\(endpoint)", "from": "\(revision)"])
            try await stream(response, endpoint: endpoint, onBatch: onBatch)
        }
        throw EtcdError.unreachable(failures)
    }

    private func stream(
        _ response: HTTPResponse,
        endpoint: EtcdEndpoint,
        onBatch: (EtcdWatchBatch) async throws -> Void
    ) async throws -> Never {
        var response = response
        var pending: [UInt8] = []
        let decoder = JSONDecoder()
        while true {
            let chunk: ByteBuffer?
            do {
                chunk = try await response.nextChunk()
            } catch {
                if Task.isCancelled { throw CancellationError() }
                throw EtcdError.watchEnded(endpoint: endpoint.url, reason: describe(error))
            }
            guard let chunk else {
                if Task.isCancelled { throw CancellationError() }
                throw EtcdError.watchEnded(endpoint: endpoint.url, reason: "etcd closed the stream")
            }
            pending += chunk.readableBytesView
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Data(pending[..<newline])
                pending.removeSubrange(...newline)
                guard !line.isEmpty else { continue }
                guard let message = try? decoder.decode(WireWatchMessage.self, from: line) else {
                    throw EtcdError.watchEnded(endpoint: endpoint.url, reason: "etcd sent a message that is not watch JSON")
                }
                if let error = message.error {
                    throw EtcdError.watchEnded(endpoint: endpoint.url, reason: error.message ?? "error \(error.grpc_code ?? 0)")
                }
                guard let result = message.result else { continue }
                if result.canceled == true {
                    if let compacted = result.compact_revision?.value, compacted > 0 {
                        throw EtcdError.watchCompacted(endpoint: endpoint.url, compactRevision: compacted)
                    }
                    throw EtcdError.watchEnded(endpoint: endpoint.url, reason: result.cancel_reason ?? "cancelled by etcd")
                }
                guard let events = result.events, !events.isEmpty else { continue }
                var batch = EtcdWatchBatch(revision: result.header?.revision?.value ?? 0, events: [])
                for event in events {
                    let key = WireBase64.decode(event.kv?.key) ?? []
                    let value = WireBase64.decode(event.kv?.value) ?? []
                    let keyValue = EtcdKeyValue(key: key, value: value, modRevision: event.kv?.mod_revision?.value ?? 0)
                    batch.events.append(EtcdWatchEvent(kind: event.type == "DELETE" ? .delete : .put, keyValue: keyValue))
                }
                try await onBatch(batch)
            }
        }
    }

    // MARK: - Requests, failover, authentication

    /// An endpoint that cannot serve; the next one is tried.
    private struct EndpointDown: Error {
        var reason: String
    }

    private func call<Request: Encodable, Response: Decodable>(
        _ path: String,
        _ request: Request,
        as type: Response.Type
    ) async throws -> (Response, String) {
        let payload = try JSONEncoder().encode(request)
        var failures: [EtcdEndpointFailure] = []
        for index in await session.order(count: settings.endpoints.count) {
            let endpoint = settings.endpoints[index]
            do {
                // One deadline for the whole exchange: a server that answers slowly, a byte at a
                // time, cannot hold us past it.
                let body = try await withinDeadline(endpoint) {
                    var response = try await self.exchange(index, path, payload)
                    return try await self.collect(&response)
                }
                guard let decoded = try? JSONDecoder().decode(Response.self, from: body) else {
                    throw EndpointDown(reason: "answered with something that is not etcd's JSON")
                }
                await session.succeeded(index)
                return (decoded, endpoint.url)
            } catch let down as EndpointDown {
                logger.warning("etcd endpoint failed", metadata: ["endpoint": "\(endpoint)", "reason": "\(down.reason)"])
                failures.append(EtcdEndpointFailure(endpoint: endpoint.url, reason: down.reason))
            }
        }
        throw EtcdError.unreachable(failures)
    }

    /// Runs `body` (one exchange with `endpoint`) within ``EtcdSettings/requestTimeout``.
    ///
    /// When the time is up, `body` is cancelled (which closes its connection) and the endpoint
    /// counts as down: the next one is tried.
    private func withinDeadline<Value: Sendable>(
        _ endpoint: EtcdEndpoint,
        _ body: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        let limit = settings.requestTimeout
        return try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw EndpointDown(reason: "no complete answer within \(limit) (ETCD_TIMEOUT)")
            }
            return value
        }
    }

    /// Sends one request to one endpoint and returns its 200 answer (body not yet read).
    ///
    /// Renews the token once if etcd calls it invalid; throws ``EndpointDown`` for
    /// failures worth trying elsewhere and ``EtcdError`` for the others.
    private func exchange(
        _ index: Int,
        _ path: String,
        _ payload: Data
    ) async throws -> HTTPResponse {
        let endpoint = settings.endpoints[index]
        var renewed = false
        while true {
            let token = try await token(for: index)
            var response = try await post(endpoint, path, payload, token: token)
            if response.status == .ok { return response }
            let body = try await collect(&response)
            switch classify(status: response.status, body: body, endpoint: endpoint) {
            case .renewToken where settings.credentials != nil && !renewed:
                await session.setToken(nil, for: index)
                renewed = true
            case .renewToken:
                throw EtcdError.authenticationRequired(endpoint: endpoint.url)
            case .endpointDown(let reason):
                throw EndpointDown(reason: reason)
            case .fatal(let error):
                throw error
            }
        }
    }

    private func token(for index: Int) async throws -> String? {
        guard let credentials = settings.credentials else { return nil }
        if let token = await session.token(for: index) { return token.isEmpty ? nil : token }
        let endpoint = settings.endpoints[index]
        let payload = try JSONEncoder().encode(WireAuthenticateRequest(name: credentials.user, password: credentials.password))
        var response = try await post(endpoint, "/v3/auth/authenticate", payload, token: nil)
        let body = try await collect(&response)
        if response.status == .ok {
            guard let token = (try? JSONDecoder().decode(WireAuthenticateResponse.self, from: body))?.token, !token.isEmpty else {
                throw EndpointDown(reason: "answered authentication without a token")
            }
            await session.setToken(token, for: index)
            logger.debug("etcd authenticated", metadata: ["endpoint": "\(endpoint)", "user": "\(credentials.user)"])
            return token
        }
        let message = (try? JSONDecoder().decode(WireError.self, from: body))?.text.lowercased() ?? ""
        if message.contains("authentication is not enabled") {
            await session.setToken("", for: index)
            return nil
        }
        if message.contains("authentication failed") || message.contains("invalid user") || message.contains("password") {
            throw EtcdError.authenticationFailed(endpoint: endpoint.url, user: credentials.user)
        }
        switch classify(status: response.status, body: body, endpoint: endpoint) {
        case .endpointDown(let reason): throw EndpointDown(reason: reason)
        case .fatal(let error): throw error
        case .renewToken: throw EtcdError.authenticationFailed(endpoint: endpoint.url, user: credentials.user)
        }
    }

    private func post(
        _ endpoint: EtcdEndpoint,
        _ path: String,
        _ payload: Data,
        token: String?
    ) async throws -> HTTPResponse {
        var headers = [("Content-Type", "application/json")]
        if let token { headers.append(("Authorization", token)) }
        do {
            return try await http.post(to: endpoint, path: path, headers: headers, body: Array(payload))
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw EndpointDown(reason: describe(error))
        }
    }

    private func collect(_ response: inout HTTPResponse) async throws -> Data {
        do {
            return Data(try await response.collect(upTo: 1 << 30))
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw EndpointDown(reason: describe(error))
        }
    }

    private enum Failure {
        case renewToken
        case endpointDown(String)
        case fatal(EtcdError)
    }

    private func classify(status: HTTPResponseStatus, body: Data, endpoint: EtcdEndpoint) -> Failure {
        guard let error = try? JSONDecoder().decode(WireError.self, from: body), error.error != nil || error.message != nil else {
            return .endpointDown("answered HTTP \(status.code), not etcd's v3 JSON gateway")
        }
        let message = error.text
        let lower = message.lowercased()
        // A stale token, or none because auth was off when this endpoint was first asked:
        // authenticate (again) if there are credentials, else report that some are needed.
        if lower.contains("invalid auth token") || lower.contains("revision in header is old")
            || lower.contains("user name is empty")
        {
            return .renewToken
        }
        if lower.contains("permission denied") {
            return .fatal(.permissionDenied(endpoint: endpoint.url))
        }
        if lower.contains("too many operations") {
            return .fatal(.tooManyOperations(endpoint: endpoint.url, assumedLimit: settings.maxTxnOperations))
        }
        if lower.contains("request is too large") || lower.contains("larger than max") {
            return .fatal(.requestTooLarge(endpoint: endpoint.url))
        }
        // gRPC UNAVAILABLE (no leader, shutting down, …) or an HTTP 5xx: try another member.
        if error.code == 14 || status.code >= 500 || lower.contains("no leader") {
            return .endpointDown(message)
        }
        return .fatal(.rejected(endpoint: endpoint.url, message: message))
    }

    /// A short, secret-free reason for a transport error.
    private func describe(_ error: any Error) -> String {
        if let error = error as? HTTPTransportError {
            switch error {
            case .noAnswer: return "no answer within \(settings.requestTimeout) (ETCD_TIMEOUT)"
            case .closedBeforeAnswer: return "closed the connection without answering"
            case .closedMidAnswer: return "closed the connection in the middle of its answer"
            case .answerTooLarge(let limit): return "answered with more than \(limit) bytes"
            case .tlsNotConfigured: return "https endpoint but no TLS configuration"
            }
        }
        if case ChannelError.connectTimeout = error { return "could not connect within \(settings.connectTimeout)" }
        if let error = error as? NIOConnectionError {
            let reasons = error.connectionErrors.map { describe($0.error) }
            if let dns = error.dnsAError ?? error.dnsAAAAError { return "cannot resolve host: \(dns)" }
            return reasons.first ?? "cannot connect"
        }
        if let error = error as? IOError {
            if error.errnoCode == ECONNREFUSED { return "connection refused" }
            if error.errnoCode == ECONNRESET { return "connection reset" }
            if error.errnoCode == EPIPE { return "closed the connection" }
            return "\(error)"
        }
        if let error = error as? NIOSSLExtraError, error == .failedToValidateHostname {
            return "TLS: server certificate not issued for this host (\(error))"
        }
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            let text = "\(error)"
            if text.contains("CERTIFICATE_VERIFY_FAILED") {
                return "TLS: server certificate not trusted by the CA file (ETCD_CACERT) or not issued for this host"
            }
            if text.contains("BAD_CERTIFICATE") || text.contains("CERTIFICATE_REQUIRED") || text.contains("UNKNOWN_CA") {
                return "TLS: etcd rejected the client certificate (ETCD_CERT, ETCD_KEY)"
            }
            return "TLS failed: \(text)"
        }
        return "\(error)"
    }

    // MARK: - Wire conversion

    private static func wire(_ condition: EtcdCondition) -> WireCompare {
        switch condition {
        case .modifiedBefore(let range, let revision):
            WireCompare(
                result: "LESS",
                target: "MOD",
                key: WireBase64.encode(range.key),
                range_end: range.end.map(WireBase64.encode),
                mod_revision: WireInt64(revision)
            )
        }
    }

    private static func wire(_ operation: EtcdOperation) -> WireRequestOp {
        switch operation {
        case .put(let key, let value):
            WireRequestOp(request_put: WirePutRequest(key: WireBase64.encode(key), value: WireBase64.encode(value)))
        case .deleteRange(let range):
            WireRequestOp(
                request_delete_range: WireDeleteRangeRequest(
                    key: WireBase64.encode(range.key),
                    range_end: range.end.map(WireBase64.encode)
                )
            )
        case .transaction(let operations):
            WireRequestOp(request_txn: WireTxnRequest(compare: nil, success: operations.map(wire)))
        }
    }

    private static func deletedCount(_ response: WireTxnResponse) -> Int64 {
        (response.responses ?? []).reduce(0) { total, op in
            total + (op.response_delete_range?.deleted?.value ?? 0) + (op.response_txn.map(deletedCount) ?? 0)
        }
    }

    private static func makeTLSContext(_ files: EtcdSettings.TLSFiles) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let ca = files.caFile {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
            } catch {
                throw EtcdError.tlsFile(path: ca, reason: "not a readable PEM CA certificate (\(error))")
            }
        }
        if let certificate = files.certificateFile, let key = files.keyFile {
            do {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
            } catch {
                throw EtcdError.tlsFile(path: certificate, reason: "not a readable PEM certificate (\(error))")
            }
            do {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            } catch {
                throw EtcdError.tlsFile(path: key, reason: "not a readable, unencrypted PEM private key")
            }
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            // The files each read well; together they do not make a context (e.g. a key that is not the
            // certificate's).
            throw EtcdError.tlsFile(
                path: files.keyFile ?? files.caFile ?? "", reason: "cannot be used with the other TLS files (\(error))")
        }
    }
}

/// Which endpoint answered last and the tokens each endpoint issued.
private actor Session {
    private var preferred = 0
    /// Per endpoint: a token, or "" when that endpoint has authentication disabled.
    private var tokens: [Int: String] = [:]

    func order(count: Int) -> [Int] {
        (0..<count).map { (preferred + $0) % count }
    }

    func succeeded(_ index: Int) {
        preferred = index
    }

    func token(for index: Int) -> String? {
        tokens[index]
    }

    func setToken(_ token: String?, for index: Int) {
        tokens[index] = token
    }
}

extension Duration {
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
