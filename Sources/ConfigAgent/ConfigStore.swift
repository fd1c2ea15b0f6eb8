import Logging

/// The configuration tree in etcd under one prefix: load it, read it back.
///
/// Layout: `PREFIX/general/NAME` and `PREFIX/ROLE/SERVICE/FILE[/SECTION]/KEY`,
/// values verbatim (UTF-8).
package struct ConfigStore: Sendable {
    package let client: EtcdClient
    /// The tree's root, e.g. `/openstack-k8s`.
    package let prefix: String
    private let logger: Logger

    package init(client: EtcdClient, prefix: String? = nil, logger: Logger = Logger(label: "kvm-launch.config")) throws {
        let prefix = prefix ?? client.settings.prefix
        try EtcdSettings.checkPrefix(prefix)
        self.client = client
        self.prefix = prefix
        self.logger = logger
    }

    /// Every key of the tree.
    package var treeRange: EtcdKeyRange { .prefix(prefix + "/") }

    /// The etcd key of a model key.
    package func etcdKey(_ key: ConfigKey) -> [UInt8] {
        Array((prefix + "/" + key.path).utf8)
    }

    // MARK: - Load

    /// What a load did.
    package struct LoadReport: Sendable, Hashable, CustomStringConvertible {
        /// The revision at which the whole new tree became visible.
        package var revision: Int64
        package var counts: ConfigTree.Counts
        /// Keys under the prefix that the new tree no longer has.
        package var removed: Int64
        /// Transactions tried (more than 1 when another writer changed the tree meanwhile).
        package var attempts: Int

        package var description: String {
            "loaded \(counts.total) keys (\(counts)); removed \(removed) stale keys; revision \(revision)"
        }
    }

    /// Replaces the whole tree with `tree` in one transaction.
    ///
    /// Reads the keys now under the prefix at revision R, then commits
    /// "if nothing under the prefix changed after R: delete the keys `tree` lacks,
    /// put every key of `tree`". If another writer got in between, it starts over
    /// (up to `attempts` times). Readers see the old tree or the new one, never a mix.
    @discardableResult
    package func load(_ tree: ConfigTree, attempts: Int = 5) async throws -> LoadReport {
        for attempt in 1...max(1, attempts) {
            let current = try await client.range(treeRange, keysOnly: true)
            let operations = ConfigStore.operations(
                replacing: current.keyValues.map(\.key),
                with: tree,
                prefix: prefix
            )
            let nested = try TransactionLayout.nest(operations, maxOperations: client.settings.maxTxnOperations)
            let result = try await client.transaction(
                conditions: [.modifiedBefore(treeRange, revision: current.revision + 1)],
                operations: nested
            )
            if result.succeeded {
                logger.info("configuration loaded", metadata: ["prefix": "\(prefix)", "revision": "\(result.revision)"])
                return LoadReport(revision: result.revision, counts: tree.counts, removed: result.deleted, attempts: attempt)
            }
            logger.notice("configuration changed during load, retrying", metadata: ["prefix": "\(prefix)", "attempt": "\(attempt)"])
        }
        throw ConfigStoreError.concurrentWriters(prefix: prefix, attempts: attempts)
    }

    /// The operations that turn a tree with `existing` keys into `tree`: deletes first, then puts, each sorted.
    package static func operations(replacing existing: [[UInt8]], with tree: ConfigTree, prefix: String) -> [EtcdOperation] {
        let puts = tree.values
            .map { (key: Array((prefix + "/" + $0.key.path).utf8), value: Array($0.value.utf8)) }
            .sorted { $0.key.lexicographicallyPrecedes($1.key) }
        let wanted = Set(puts.map(\.key))
        let deletes = existing.filter { !wanted.contains($0) }.sorted { $0.lexicographicallyPrecedes($1) }
        return deletes.map { .deleteRange(EtcdKeyRange(key: $0, end: nil)) } + puts.map { .put(key: $0.key, value: $0.value) }
    }

    // MARK: - Read

    /// The tree as etcd holds it at one revision.
    package struct Snapshot: Sendable, Hashable {
        package var revision: Int64
        package var tree: ConfigTree
        /// Keys under the prefix that are not part of the data model (ignored).
        package var ignoredKeys: [String]
    }

    /// Reads the whole tree at one revision.
    package func read(revision: Int64? = nil) async throws -> Snapshot {
        let snapshot = try await client.range(treeRange, revision: revision)
        return decode(snapshot)
    }

    /// Reads only the `general/` variables.
    package func readGeneral() async throws -> (revision: Int64, variables: [String: String]) {
        let snapshot = try await client.range(.prefix(prefix + "/general/"))
        return (snapshot.revision, decode(snapshot).tree.general)
    }

    /// Reads the environment of `role`: `general/` and the role's `ROLE/NAME` variables, which win,
    /// both at one revision (the role's settings are not read). `role` nil: `general/` only.
    package func readEnvironment(role: ConfigRole?) async throws -> (revision: Int64, variables: [String: String]) {
        let general = try await client.range(.prefix(prefix + "/general/"))
        guard let role else { return (general.revision, decode(general).tree.general) }
        // The role's keys at the same revision; only its two-part keys are variables.
        let roleKeys = try await client.range(.prefix(prefix + "/" + role.rawValue + "/"), revision: general.revision)
        let variables = roleKeys.keyValues.filter { keyValue in
            guard let key = keyValue.keyString else { return false }
            return !key.dropFirst(prefix.count + role.rawValue.count + 2).contains("/")
        }
        var tree = decode(general).tree
        for (key, value) in decode(EtcdSnapshot(revision: roleKeys.revision, keyValues: variables)).tree.values { tree[key] = value }
        return (general.revision, tree.environment(role: role))
    }

    /// Turns raw key-values under the prefix into a tree, setting aside what does not fit.
    package func decode(_ snapshot: EtcdSnapshot) -> Snapshot {
        var tree = ConfigTree()
        var ignored: [String] = []
        let root = prefix + "/"
        for keyValue in snapshot.keyValues {
            guard let fullKey = keyValue.keyString, fullKey.hasPrefix(root) else {
                ignored.append(String(decoding: keyValue.key, as: UTF8.self))
                continue
            }
            let path = String(fullKey.dropFirst(root.count))
            guard let key = try? ConfigKey(path: path), let value = keyValue.valueString else {
                ignored.append(fullKey)
                continue
            }
            tree[key] = value
        }
        if !ignored.isEmpty {
            logger.warning("ignoring keys outside the data model", metadata: ["keys": "\(ignored.prefix(5))", "count": "\(ignored.count)"])
        }
        return Snapshot(revision: snapshot.revision, tree: tree, ignoredKeys: ignored)
    }
}

/// Failures of whole-tree operations.
package enum ConfigStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    case concurrentWriters(prefix: String, attempts: Int)

    package var description: String {
        switch self {
        case .concurrentWriters(let prefix, let attempts):
            "the tree under \(prefix) kept changing during \(attempts) load attempts; stop other writers and load again"
        }
    }
}
