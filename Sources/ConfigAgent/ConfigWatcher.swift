import Logging

/// A file to keep rendered: which one, and the directory it lives in.
package struct RenderTarget: Sendable, Hashable, CustomStringConvertible {
    package var file: ConfigFileID
    package var directory: String

    package init(file: ConfigFileID, directory: String) {
        self.file = file
        self.directory = directory
    }

    package var path: String { (directory.hasSuffix("/") ? directory : directory + "/") + file.file }
    package var description: String { "\(file) -> \(path)" }
}

/// Keeps rendered files current while etcd changes.
///
/// Cycle: read the whole tree at revision R, render every target, run the
/// reload command if any file changed, then watch the prefix from R+1. A change
/// to `general/` or to a target's keys triggers a fresh read and another round.
/// When etcd goes away (stream broken, read failed, compaction) the watcher
/// waits (exponential backoff) and starts the cycle again with a fresh read, so
/// changes made meanwhile are not missed. A render failure (say an unknown
/// variable) keeps the previous file and is reported; watching goes on.
package struct ConfigWatcher: Sendable {
    /// Reconnection delays: `initial`, doubled after each failure up to `maximum`.
    package struct Backoff: Sendable, Hashable {
        package var initial: Duration
        package var maximum: Duration

        package init(initial: Duration = .milliseconds(200), maximum: Duration = .seconds(10)) {
            self.initial = initial
            self.maximum = maximum
        }
    }

    /// What one render round did.
    package struct Round: Sendable, Hashable {
        package var revision: Int64
        package var outcomes: [RenderTarget: ConfigRenderer.Outcome]
        /// One line per target that failed.
        package var failures: [String]
        /// How the reload command ended, if it ran.
        package var reload: ReloadCommand.Termination?

        package var changed: Bool { outcomes.values.contains { $0 != .unchanged } }
    }

    package var store: ConfigStore
    package var targets: [RenderTarget]
    /// The container environment; takes precedence over `general/` (``EnvironmentPrecedence``).
    package var environment: [String: String]
    package var unknownVariables: VariableSubstitution.UnknownPolicy
    package var reload: ReloadCommand?
    package var backoff: Backoff
    /// Called after every round (for logs, and for tests to follow progress).
    package var onRound: (@Sendable (Round) -> Void)?
    private let logger: Logger

    package init(
        store: ConfigStore,
        targets: [RenderTarget],
        environment: [String: String],
        unknownVariables: VariableSubstitution.UnknownPolicy = .fail,
        reload: ReloadCommand? = nil,
        backoff: Backoff = Backoff(),
        logger: Logger = Logger(label: "kvm-launch.config.watch"),
        onRound: (@Sendable (Round) -> Void)? = nil
    ) {
        self.store = store
        self.targets = targets
        self.environment = environment
        self.unknownVariables = unknownVariables
        self.reload = reload
        self.backoff = backoff
        self.logger = logger
        self.onRound = onRound
    }

    /// Runs until the task is cancelled (then throws `CancellationError`).
    package func run() async throws -> Never {
        var delay = backoff.initial
        while true {
            try Task.checkCancellation()
            do {
                let snapshot = try await store.read()
                delay = backoff.initial
                var rendered = snapshot.revision
                await renderRound(snapshot)
                try await store.client.watch(store.treeRange, from: snapshot.revision + 1) { batch in
                    let relevant = batch.events.filter { isRelevant($0.keyValue.key) }
                    guard batch.revision > rendered, !relevant.isEmpty else { return }
                    for event in relevant { logChange(event) }
                    let fresh = try await store.read()
                    rendered = fresh.revision
                    await renderRound(fresh)
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.warning("lost etcd, reconnecting", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, backoff.maximum)
            }
        }
    }

    /// Renders every target from `snapshot`, then runs the reload command if a file changed.
    @discardableResult
    package func renderRound(_ snapshot: ConfigStore.Snapshot) async -> Round {
        let renderer = ConfigRenderer(general: snapshot.tree.general, environment: environment, unknownVariables: unknownVariables)
        var round = Round(revision: snapshot.revision, outcomes: [:], failures: [], reload: nil)
        for target in targets {
            do {
                let outcome = try renderer.write(target.file, from: snapshot.tree, into: target.directory)
                round.outcomes[target] = outcome
                if outcome != .unchanged {
                    logger.info("rendered", metadata: ["file": "\(target.path)", "outcome": "\(outcome.rawValue)", "revision": "\(snapshot.revision)"])
                }
            } catch {
                round.failures.append("\(target.path): \(error)")
                logger.error("cannot render, keeping the previous file", metadata: ["file": "\(target.path)", "error": "\(error)"])
            }
        }
        if round.changed, let reload {
            do {
                let termination = try await reload.run()
                round.reload = termination
                if termination.succeeded {
                    logger.info("reload command done", metadata: ["command": "\(reload)"])
                } else {
                    logger.error("reload command failed", metadata: ["command": "\(reload)", "status": "\(termination)"])
                }
            } catch {
                round.failures.append("\(error)")
                logger.error("cannot run reload command", metadata: ["error": "\(error)"])
            }
        }
        onRound?(round)
        return round
    }

    private func logChange(_ event: EtcdWatchEvent) {
        let key = event.keyValue.keyString ?? "?"
        let name = key.split(separator: "/").last.map(String.init) ?? key
        let value = event.kind == .delete ? "(deleted)" : Redaction.display(event.keyValue.valueString ?? "?", name: name)
        logger.debug("etcd change", metadata: ["key": "\(key)", "value": "\(value)", "revision": "\(event.keyValue.modRevision)"])
    }

    /// Whether a changed key can affect a target: a general variable or one of the targets' settings.
    private func isRelevant(_ key: [UInt8]) -> Bool {
        guard let text = String(validating: key, as: UTF8.self) else { return false }
        if text.hasPrefix(store.prefix + "/general/") { return true }
        return targets.contains { text.hasPrefix(store.prefix + "/" + $0.file.path + "/") }
    }
}
