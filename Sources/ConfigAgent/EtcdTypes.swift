/// A key and its value as stored in etcd (raw bytes).
package struct EtcdKeyValue: Sendable, Hashable {
    package var key: [UInt8]
    package var value: [UInt8]
    /// Revision of the key's last change.
    package var modRevision: Int64

    package init(key: [UInt8], value: [UInt8], modRevision: Int64 = 0) {
        self.key = key
        self.value = value
        self.modRevision = modRevision
    }

    /// The key as UTF-8 text, nil if it is not.
    package var keyString: String? { String(validating: key, as: UTF8.self) }
    /// The value as UTF-8 text, nil if it is not.
    package var valueString: String? { String(validating: value, as: UTF8.self) }
}

/// A key range `[key, end)`; `end` nil means the single key.
package struct EtcdKeyRange: Sendable, Hashable {
    package var key: [UInt8]
    package var end: [UInt8]?

    package init(key: [UInt8], end: [UInt8]?) {
        self.key = key
        self.end = end
    }

    /// Every key starting with `prefix`.
    package static func prefix(_ prefix: String) -> EtcdKeyRange {
        var end = Array(prefix.utf8)
        while let last = end.last, last == 0xFF { end.removeLast() }
        if end.isEmpty {
            // etcd's "\0" range end: every key from `prefix` on.
            return EtcdKeyRange(key: Array(prefix.utf8), end: [0])
        }
        end[end.count - 1] += 1
        return EtcdKeyRange(key: Array(prefix.utf8), end: end)
    }
}

/// The keys of a range read, all at one revision.
package struct EtcdSnapshot: Sendable, Hashable {
    /// The store's revision the read saw.
    package var revision: Int64
    package var keyValues: [EtcdKeyValue]

    package init(revision: Int64, keyValues: [EtcdKeyValue]) {
        self.revision = revision
        self.keyValues = keyValues
    }
}

/// One operation of a transaction.
package indirect enum EtcdOperation: Sendable, Hashable {
    case put(key: [UInt8], value: [UInt8])
    case deleteRange(EtcdKeyRange)
    /// A nested transaction without conditions: its operations run as part of the outer one.
    case transaction([EtcdOperation])

    /// Number of put/delete operations, nested ones included.
    package var leafCount: Int {
        switch self {
        case .put, .deleteRange: 1
        case .transaction(let operations): operations.reduce(0) { $0 + $1.leafCount }
        }
    }
}

/// A transaction condition.
package enum EtcdCondition: Sendable, Hashable {
    /// Every key in the range was last modified before `revision` (true for an empty range).
    case modifiedBefore(EtcdKeyRange, revision: Int64)
}

/// What a transaction did.
package struct EtcdTransactionResult: Sendable, Hashable {
    /// Whether the conditions held and the operations ran.
    package var succeeded: Bool
    /// The store's revision after the transaction.
    package var revision: Int64
    /// Keys removed by the delete operations, nested ones included.
    package var deleted: Int64
}

/// One change seen by a watch.
package struct EtcdWatchEvent: Sendable, Hashable {
    package enum Kind: Sendable, Hashable {
        case put
        case delete
    }

    package var kind: Kind
    package var keyValue: EtcdKeyValue
}

/// The changes of one watch message, all at `revision`.
package struct EtcdWatchBatch: Sendable, Hashable {
    package var revision: Int64
    package var events: [EtcdWatchEvent]
}

/// Why one endpoint could not serve a request.
package struct EtcdEndpointFailure: Sendable, Hashable, CustomStringConvertible {
    package var endpoint: String
    package var reason: String

    package var description: String { "\(endpoint) (\(reason))" }
}

/// What went wrong talking to etcd. Messages name the endpoint and never contain secrets.
package enum EtcdError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No endpoint could serve the request.
    case unreachable([EtcdEndpointFailure])
    /// etcd refused the request.
    case rejected(endpoint: String, message: String)
    /// etcd did not accept the user name or password.
    case authenticationFailed(endpoint: String, user: String)
    /// etcd has authentication enabled and no user was configured.
    case authenticationRequired(endpoint: String)
    /// The user may not access the keys.
    case permissionDenied(endpoint: String)
    /// A transaction level had more operations than the server's `--max-txn-ops`.
    case tooManyOperations(endpoint: String, assumedLimit: Int)
    /// The request exceeded the server's `--max-request-bytes`.
    case requestTooLarge(endpoint: String)
    /// A TLS file could not be loaded.
    case tlsFile(path: String, reason: String)
    /// The watch fell behind a compaction; start again from a fresh read.
    case watchCompacted(endpoint: String, compactRevision: Int64)
    /// The watch stream ended or broke.
    case watchEnded(endpoint: String, reason: String)

    package var description: String {
        switch self {
        case .unreachable(let failures):
            "etcd unreachable: " + failures.map(\.description).joined(separator: "; ")
                + "; check ETCD_ENDPOINTS and that etcd runs there"
        case .rejected(let endpoint, let message):
            "etcd at \(endpoint) refused the request: \(message)"
        case .authenticationFailed(let endpoint, let user):
            "etcd at \(endpoint) rejected user '\(user)': wrong user name or password; check ETCD_USER and ETCD_PASSWORD"
        case .authenticationRequired(let endpoint):
            "etcd at \(endpoint) has authentication enabled; set ETCD_USER and ETCD_PASSWORD"
        case .permissionDenied(let endpoint):
            "etcd at \(endpoint) denied access to the configuration keys; grant the user's role readwrite on the prefix"
        case .tooManyOperations(let endpoint, let limit):
            "etcd at \(endpoint) refused a transaction as too wide; its --max-txn-ops is below \(limit), set ETCD_MAX_TXN_OPS to it"
        case .requestTooLarge(let endpoint):
            "etcd at \(endpoint) refused the request as too large; raise etcd's --max-request-bytes (default 1.5 MiB)"
        case .tlsFile(let path, let reason):
            "cannot use TLS file \(path): \(reason)"
        case .watchCompacted(let endpoint, let revision):
            "watch on \(endpoint) fell behind compaction at revision \(revision); re-reading"
        case .watchEnded(let endpoint, let reason):
            "watch on \(endpoint) ended: \(reason)"
        }
    }
}
