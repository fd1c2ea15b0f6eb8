/// One etcd client URL, `http://host:port` or `https://host:port`.
package struct EtcdEndpoint: Sendable, Hashable, CustomStringConvertible {
    package var secure: Bool
    package var host: String
    package var port: Int

    package init(secure: Bool, host: String, port: Int) {
        self.secure = secure
        self.host = host
        self.port = port
    }

    /// Parses `http[s]://host[:port]` (port defaults to 2379; IPv6 hosts in brackets).
    package init(parsing text: String) throws(EtcdSettingsError) {
        let trimmed = text.trimmedWhitespace
        let rest: Substring
        if trimmed.hasPrefix("http://") {
            secure = false
            rest = trimmed.dropFirst("http://".count)
        } else if trimmed.hasPrefix("https://") {
            secure = true
            rest = trimmed.dropFirst("https://".count)
        } else {
            throw .badEndpoint(trimmed)
        }
        var authority = rest
        if authority.hasSuffix("/") { authority = authority.dropLast() }
        guard !authority.isEmpty, !authority.contains("/"), !authority.contains("@") else { throw .badEndpoint(trimmed) }
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .badEndpoint(trimmed) }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.isEmpty {
                port = 2379
            } else if after.hasPrefix(":"), let value = Int(after.dropFirst()), (1...65535).contains(value) {
                port = value
            } else {
                throw .badEndpoint(trimmed)
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let value = Int(authority[authority.index(after: colon)...]), (1...65535).contains(value) else {
                throw .badEndpoint(trimmed)
            }
            port = value
        } else {
            host = String(authority)
            port = 2379
        }
        guard !host.isEmpty else { throw .badEndpoint(trimmed) }
    }

    /// The base URL requests go to.
    package var url: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(secure ? "https" : "http")://\(shownHost):\(port)"
    }

    package var description: String { url }
}

/// How to reach etcd and where the configuration tree lives.
package struct EtcdSettings: Sendable, Hashable {
    /// TLS material as PEM files.
    package struct TLSFiles: Sendable, Hashable {
        /// CA bundle that signed the server certificates (nil: the system trust store).
        package var caFile: String?
        /// Client certificate and its key, for etcd's `--client-cert-auth`.
        package var certificateFile: String?
        package var keyFile: String?

        package init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    /// etcd user and password (etcd's own auth; the password is never logged).
    package struct Credentials: Sendable, Hashable, CustomStringConvertible {
        package var user: String
        package var password: String

        package init(user: String, password: String) {
            self.user = user
            self.password = password
        }

        package var description: String { "user \(user)" }
    }

    /// The prefix used when `ETCD_PREFIX` is not set.
    package static let defaultPrefix = "/openstack-k8s"
    /// What `ETCD_TIMEOUT` (``requestTimeout``) may be: long enough for one answer, short
    /// enough that a stuck etcd cannot hold the launcher for long.
    package static let timeoutRange: ClosedRange<Duration> = .milliseconds(100) ... .seconds(3600)
    /// etcd's default `--max-txn-ops`.
    package static let defaultMaxTxnOperations = 128

    /// Tried in order, starting with the last one that answered.
    package var endpoints: [EtcdEndpoint]
    /// Root of the tree, e.g. `/openstack-k8s`: keys are `PREFIX/general/NAME`, …
    package var prefix: String
    package var tls: TLSFiles
    package var credentials: Credentials?
    /// Time allowed to connect to one endpoint.
    package var connectTimeout: Duration
    /// Time allowed for one whole exchange with one endpoint: connecting, authenticating,
    /// sending, and reading the complete answer (a watch: until its stream opens).
    package var requestTimeout: Duration
    /// The server's `--max-txn-ops`: how wide one level of a transaction may be.
    package var maxTxnOperations: Int

    package init(
        endpoints: [EtcdEndpoint],
        prefix: String = EtcdSettings.defaultPrefix,
        tls: TLSFiles = TLSFiles(),
        credentials: Credentials? = nil,
        connectTimeout: Duration = .seconds(3),
        requestTimeout: Duration = .seconds(10),
        maxTxnOperations: Int = EtcdSettings.defaultMaxTxnOperations
    ) throws(EtcdSettingsError) {
        guard !endpoints.isEmpty else { throw .noEndpoints }
        try EtcdSettings.checkPrefix(prefix)
        guard maxTxnOperations >= 4 else { throw .badNumber("ETCD_MAX_TXN_OPS", String(maxTxnOperations)) }
        if (tls.certificateFile == nil) != (tls.keyFile == nil) { throw .certificateWithoutKey }
        guard requestTimeout >= EtcdSettings.timeoutRange.lowerBound, requestTimeout <= EtcdSettings.timeoutRange.upperBound else {
            throw .timeoutOutOfRange("\(requestTimeout)")
        }
        self.endpoints = endpoints
        self.prefix = prefix
        self.tls = tls
        self.credentials = credentials
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.maxTxnOperations = maxTxnOperations
    }

    /// Reads the settings from environment variables; nil when `ETCD_ENDPOINTS` is unset or empty.
    ///
    /// | Variable | Meaning |
    /// |---|---|
    /// | `ETCD_ENDPOINTS` | comma-separated `http[s]://host:port` list |
    /// | `ETCD_PREFIX` | tree root, default `/openstack-k8s` |
    /// | `ETCD_CACERT`, `ETCD_CERT`, `ETCD_KEY` | PEM files: CA, client certificate, client key |
    /// | `ETCD_USER`, `ETCD_PASSWORD` | etcd authentication |
    /// | `ETCD_TIMEOUT` | seconds per exchange with one endpoint, 0.1 to 3600 (default 10) |
    /// | `ETCD_MAX_TXN_OPS` | the server's `--max-txn-ops` (default 128) |
    package static func fromEnvironment(_ environment: [String: String]) throws(EtcdSettingsError) -> EtcdSettings? {
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmedWhitespace, !raw.isEmpty else { return nil }
            return raw
        }
        guard let list = value("ETCD_ENDPOINTS") else { return nil }
        var endpoints: [EtcdEndpoint] = []
        for item in list.split(separator: ",") where !String(item).trimmedWhitespace.isEmpty {
            endpoints.append(try EtcdEndpoint(parsing: String(item)))
        }
        var credentials: Credentials?
        if let user = value("ETCD_USER") {
            credentials = Credentials(user: user, password: environment["ETCD_PASSWORD"] ?? "")
        } else if value("ETCD_PASSWORD") != nil {
            throw .passwordWithoutUser
        }
        var timeout = Duration.seconds(10)
        if let text = value("ETCD_TIMEOUT") {
            guard let seconds = Double(text), seconds.isFinite else { throw .badNumber("ETCD_TIMEOUT", text) }
            guard seconds >= 0.1, seconds <= 3600 else { throw .timeoutOutOfRange(text) }
            timeout = .milliseconds(Int64((seconds * 1000).rounded()))
        }
        var maxOps = defaultMaxTxnOperations
        if let text = value("ETCD_MAX_TXN_OPS") {
            guard let number = Int(text) else { throw .badNumber("ETCD_MAX_TXN_OPS", text) }
            maxOps = number
        }
        return try EtcdSettings(
            endpoints: endpoints,
            prefix: value("ETCD_PREFIX") ?? defaultPrefix,
            tls: TLSFiles(caFile: value("ETCD_CACERT"), certificateFile: value("ETCD_CERT"), keyFile: value("ETCD_KEY")),
            credentials: credentials,
            requestTimeout: timeout,
            maxTxnOperations: maxOps
        )
    }

    static func checkPrefix(_ prefix: String) throws(EtcdSettingsError) {
        guard prefix.hasPrefix("/"), prefix.count > 1, !prefix.hasSuffix("/"), !prefix.contains("//") else {
            throw .badPrefix(prefix)
        }
    }
}

/// Settings that cannot work.
package enum EtcdSettingsError: Error, Sendable, Hashable, CustomStringConvertible {
    case noEndpoints
    case badEndpoint(String)
    case badPrefix(String)
    case badNumber(String, String)
    case certificateWithoutKey
    case passwordWithoutUser
    /// `ETCD_TIMEOUT` outside 0.1 s – 1 h.
    case timeoutOutOfRange(String)

    package var description: String {
        switch self {
        case .noEndpoints:
            "no etcd endpoint given; set ETCD_ENDPOINTS (or --endpoints) to e.g. http://127.0.0.1:2379"
        case .badEndpoint(let text):
            "etcd endpoint '\(text)' is not http://host:port or https://host:port"
        case .badPrefix(let prefix):
            "etcd prefix '\(prefix)' must start with '/', not end with '/', and not be '/' alone (e.g. /openstack-k8s)"
        case .badNumber(let name, let text):
            "\(name)='\(text)' is not a usable number"
        case .certificateWithoutKey:
            "a client certificate needs its key and the other way round; set both ETCD_CERT and ETCD_KEY"
        case .timeoutOutOfRange(let text):
            "ETCD_TIMEOUT='\(text)' is outside 0.1 to 3600 seconds; give the seconds one exchange with etcd may take (default 10)"
        case .passwordWithoutUser:
            "ETCD_PASSWORD is set but ETCD_USER is not; set the etcd user name too"
        }
    }
}
