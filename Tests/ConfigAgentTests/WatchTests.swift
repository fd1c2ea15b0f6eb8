import Foundation
import Synchronization
import TestSupport
import Testing

@testable import ConfigAgent

/// The watcher against a real etcd: renders, follows changes, reloads, outlives etcd restarts.
@Suite("watch")
struct WatchTests {
    static let nova = ConfigFileID(role: .compute, service: "nova", file: "nova.conf")

    static func tree(region: String, extra: [ConfigKey: String] = [:]) -> ConfigTree {
        var values: [ConfigKey: String] = [
            .general("REGION"): region,
            .general("DB_PASSWORD"): "pw-\(region)",
            .setting(SettingKey(file: nova, section: "database", key: "connection")): "mysql://nova:$DB_PASSWORD@db/nova",
            .setting(SettingKey(file: nova, section: "DEFAULT", key: "region_name")): "$REGION",
            .setting(SettingKey(file: nova, section: "libvirt", key: "virt_type")): "kvm",
            .setting(SettingKey(file: ConfigFileID(role: .compute, service: "neutron", file: "neutron.conf"), section: "DEFAULT", key: "debug")): "True",
        ]
        values.merge(extra) { $1 }
        return ConfigTree(values: values)
    }

    /// Rounds the watcher reported, for waiting on progress.
    final class Rounds: Sendable {
        private let storage = Mutex<[ConfigWatcher.Round]>([])
        func append(_ round: ConfigWatcher.Round) { storage.withLock { $0.append(round) } }
        var all: [ConfigWatcher.Round] { storage.withLock { $0 } }
    }

    private func reloadLines(_ directory: String) -> [String] {
        ((try? readFile(directory + "/reloads")) ?? "").split(separator: "\n").map(String.init)
    }

    @Test("renders at start, re-renders on a change, runs the reload command with its arguments verbatim")
    func followsChanges() async throws {
        try await EtcdServer.with { server in
            let temporary = try TemporaryDirectory()
            defer { temporary.remove() }
            let directory = temporary.path
            let target = RenderTarget(file: Self.nova, directory: directory)
            let path = target.path
            // The argument reaches the program as one word, `$HOME` unexpanded: no shell in between.
            let reload = try ReloadCommand(["/bin/sh", "-c", "printf '%s\\n' \"$1\" >> \"$0\"", directory + "/reloads", "ran $HOME"])
            let rounds = Rounds()
            let logs = OutputCollector()
            try await EtcdClient.withClient(settings: try server.clientSettings(prefix: "/w"), logger: quietLogger) { client in
                let store = try ConfigStore(client: client, logger: quietLogger)
                try await store.load(Self.tree(region: "one"))
                let watcher = ConfigWatcher(
                    store: store, targets: [target], environment: [:], reload: reload,
                    backoff: .init(initial: .milliseconds(50), maximum: .milliseconds(500)),
                    logger: recordingLogger(logs), onRound: { rounds.append($0) }
                )
                let task = Task { try await watcher.run() }
                defer { task.cancel() }

                #expect(await eventually { INIDocument((try? readFile(path)) ?? "").value(section: "DEFAULT", key: "region_name") == "one" })
                #expect(await eventually { reloadLines(directory) == ["ran $HOME"] })

                try await store.load(Self.tree(region: "two"))
                #expect(await eventually { INIDocument((try? readFile(path)) ?? "").value(section: "DEFAULT", key: "region_name") == "two" })
                #expect(await eventually { reloadLines(directory).count == 2 })
                #expect(INIDocument(try readFile(path)).value(section: "database", key: "connection") == "mysql://nova:pw-two@db/nova")
                // Changes are logged by key; secret values are not.
                #expect(logs.lines.contains { $0.contains("/w/general/REGION") && $0.contains("two") })
                #expect(logs.lines.contains { $0.contains("/w/general/DB_PASSWORD") && $0.contains("<redacted>") })
                #expect(!logs.lines.contains { $0.contains("pw-two") })

                // A change that breaks rendering keeps the previous file and is reported.
                let broken = Self.tree(region: "three", extra: [.setting(SettingKey(file: Self.nova, section: "DEFAULT", key: "host")): "$NO_SUCH_VARIABLE"])
                try await store.load(broken)
                #expect(await eventually { rounds.all.contains { !$0.failures.isEmpty } })
                let failure = rounds.all.first { !$0.failures.isEmpty }?.failures.first ?? ""
                #expect(failure.contains("NO_SUCH_VARIABLE"))
                #expect(INIDocument(try readFile(path)).value(section: "DEFAULT", key: "region_name") == "two")
                #expect(reloadLines(directory).count == 2)

                task.cancel()
                let result = await task.result
                #expect(throws: CancellationError.self) { try result.get() }
            }
        }
    }

    /// A watch is not under the exchange's deadline (it may stay quiet for hours), but its answer's head is.
    @Test("a watch on an endpoint that accepts but never answers gives up at ETCD_TIMEOUT, naming it", .timeLimit(.minutes(1)))
    func watchWithoutAnswer() async throws {
        let silent = try SilentListener()
        let hanging = EtcdEndpoint(secure: false, host: "127.0.0.1", port: silent.port)
        let settings = try EtcdSettings(endpoints: [hanging], requestTimeout: .milliseconds(300))
        try await EtcdClient.withClient(settings: settings, logger: quietLogger) { client in
            let error = await #expect(throws: EtcdError.self) {
                try await client.watch(.prefix("/silent/"), from: 1) { _ in }
            }
            let message = error.map { "\($0)" } ?? ""
            #expect(message.contains(hanging.url) && message.contains("no answer within"), "\(message)")
        }
        _ = silent.port
    }

    @Test("survives an etcd restart: reconnects, re-reads, and picks up later changes")
    func survivesRestart() async throws {
        try await EtcdServer.with { server in
            let temporary = try TemporaryDirectory()
            defer { temporary.remove() }
            let directory = temporary.path
            let target = RenderTarget(file: Self.nova, directory: directory)
            let rounds = Rounds()
            let logs = OutputCollector()
            try await EtcdClient.withClient(settings: try server.clientSettings(prefix: "/r", timeout: .seconds(2)), logger: quietLogger) { client in
                let store = try ConfigStore(client: client, logger: quietLogger)
                try await store.load(Self.tree(region: "before"))
                let watcher = ConfigWatcher(
                    store: store, targets: [target], environment: [:],
                    backoff: .init(initial: .milliseconds(50), maximum: .milliseconds(300)),
                    logger: recordingLogger(logs), onRound: { rounds.append($0) }
                )
                let task = Task { try await watcher.run() }
                defer { task.cancel() }
                #expect(await eventually { INIDocument((try? readFile(target.path)) ?? "").value(section: "DEFAULT", key: "region_name") == "before" })

                await server.stop()
                try await server.start()
                try await store.load(Self.tree(region: "after"))
                #expect(await eventually { INIDocument((try? readFile(target.path)) ?? "").value(section: "DEFAULT", key: "region_name") == "after" })
                // The watch broke with the restart and the watcher started over from a fresh read.
                #expect(logs.lines.contains { $0.contains("lost etcd, reconnecting") })
                #expect(rounds.all.count >= 2)
                task.cancel()
                _ = await task.result
            }
        }
    }
}
