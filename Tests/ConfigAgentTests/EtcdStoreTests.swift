import Foundation
import Logging
import TestSupport
import Testing

@testable import ConfigAgent

/// Load and read against a real etcd (Debian's etcd-server) on loopback.
@Suite("etcd store")
struct EtcdStoreTests {
    @Test("the reference set loads in one transaction at etcd's default limits and renders the golden nova.conf and neutron.conf")
    func loadThenRender() async throws {
        try await EtcdServer.with { server in
            let (tree, _) = try ConfigTree.read(paths: [fixture("reference")], options: .legacy)
            #expect(tree.values.count > EtcdSettings.defaultMaxTxnOperations)
            let temporary = try TemporaryDirectory()
            defer { temporary.remove() }
            let directory = temporary.path
            try await EtcdClient.withClient(settings: try server.clientSettings(), logger: quietLogger) { client in
                let store = try ConfigStore(client: client, logger: quietLogger)
                let report = try await store.load(tree)
                #expect(report.counts == tree.counts)
                #expect(report.removed == 0)
                let snapshot = try await store.read()
                #expect(snapshot.tree == tree)
                #expect(snapshot.revision == report.revision)
                #expect(snapshot.ignoredKeys.isEmpty)
                // One transaction: every key carries the same modification revision.
                let raw = try await client.range(store.treeRange)
                #expect(Set(raw.keyValues.map(\.modRevision)) == [report.revision])

                try FileManager.default.copyItem(atPath: fixture("existing/nova.conf"), toPath: directory + "/nova.conf")
                let renderer = ConfigRenderer(general: snapshot.tree.general, environment: RenderTests.hostEnvironment)
                #expect(try renderer.write(ConfigFileID(path: "compute/nova/nova.conf"), from: snapshot.tree, into: directory) == .updated)
                #expect(try readFile(directory + "/nova.conf") == (try fixtureText("golden/compute-nova.conf")))
                try FileManager.default.copyItem(atPath: fixture("existing/neutron.conf"), toPath: directory + "/neutron.conf")
                try renderer.write(ConfigFileID(path: "compute/neutron/neutron.conf"), from: snapshot.tree, into: directory)
                #expect(try readFile(directory + "/neutron.conf") == (try fixtureText("golden/compute-neutron.conf")))
            }
        }
    }

    @Test("values with '=', unicode, quotes and empty values come back unchanged")
    func valuesRoundTrip() async throws {
        try await EtcdServer.with { server in
            let file = ConfigFileID(role: .controller, service: "nova", file: "nova.conf")
            let tree = ConfigTree(values: [
                .general("SECRET_B64"): "c2VjcmV0PT0=",
                .general("GREETING"): "¡hola, 世界! 🚀",
                .general("QUOTED"): #"it's "x" $HOME"#,
                .general("EMPTY"): "",
                .setting(SettingKey(file: file, section: "database", key: "connection")): "mysql://n:p=w@h/db?a=b&c=d",
                .setting(SettingKey(file: file, section: nil, key: "log file")): "/var/log/ñ.log",
            ])
            try await EtcdClient.withClient(settings: try server.clientSettings(prefix: "/cfg"), logger: quietLogger) { client in
                let store = try ConfigStore(client: client, logger: quietLogger)
                try await store.load(tree)
                #expect(try await store.read().tree == tree)
                #expect(try await store.readGeneral().variables == tree.general)
            }
        }
    }

    @Test("a load replaces the whole tree: stale keys go, keys outside the prefix stay")
    func replacesTree() async throws {
        try await EtcdServer.with { server in
            try await EtcdClient.withClient(settings: try server.clientSettings(prefix: "/cfg"), logger: quietLogger) { client in
                let store = try ConfigStore(client: client, logger: quietLogger)
                _ = try await client.put(key: Array("/cfg-sibling/x".utf8), value: Array("keep".utf8))
                _ = try await client.put(key: Array("/other/y".utf8), value: Array("keep".utf8))
                try await store.load(ConfigTree(values: [.general("A"): "1", .general("B"): "1"]))
                let report = try await store.load(ConfigTree(values: [.general("B"): "2", .general("C"): "2"]))
                #expect(report.removed == 1)
                #expect(try await store.read().tree.general == ["B": "2", "C": "2"])
                let outside = try await client.range(.prefix("/o")).keyValues.map(\.valueString)
                #expect(outside == ["keep"])
                let sibling = try await client.range(EtcdKeyRange(key: Array("/cfg-sibling/x".utf8), end: nil))
                #expect(sibling.keyValues.count == 1)
            }
        }
    }

    @Test("readers never see a mix of two loads")
    func atomicReplace() async throws {
        try await EtcdServer.with { server in
            let settings = try server.clientSettings(prefix: "/atomic")
            // Generations differ in size, so each load also deletes or adds keys.
            let sizes = [300, 150, 420, 90, 333, 200]
            let expectedCount = Dictionary(uniqueKeysWithValues: sizes.enumerated().map { ($0.offset + 1, $0.element + 1) })
            try await EtcdClient.withClient(settings: settings, logger: quietLogger) { client in
                let store = try ConfigStore(client: client, logger: quietLogger)
                try await store.load(generationTree(1, count: sizes[0]))
                let snapshots = try await withThrowingTaskGroup(of: [String].self) { group in
                    group.addTask {
                        // The reader: range the prefix until the last generation shows up.
                        var problems: [String] = []
                        var seen = Set<Int>()
                        while !seen.contains(sizes.count) {
                            let snapshot = try await client.range(store.treeRange)
                            let generations = Set(snapshot.keyValues.compactMap { kv -> Int? in
                                let value = kv.valueString ?? ""
                                if value.hasPrefix("gen-") { return Int(value.dropFirst(4).prefix { $0 != "-" }) }
                                return Int(value)
                            })
                            guard generations.count == 1, let generation = generations.first else {
                                problems.append("revision \(snapshot.revision) mixes generations \(generations.sorted())")
                                continue
                            }
                            if snapshot.keyValues.count != expectedCount[generation] {
                                problems.append("revision \(snapshot.revision): \(snapshot.keyValues.count) keys for generation \(generation)")
                            }
                            seen.insert(generation)
                        }
                        return problems + ["seen \(seen.count)"]
                    }
                    group.addTask {
                        for (offset, size) in sizes.enumerated().dropFirst() {
                            try await store.load(generationTree(offset + 1, count: size))
                        }
                        return []
                    }
                    var all: [String] = []
                    for try await lines in group { all += lines }
                    return all
                }
                let problems = snapshots.filter { !$0.hasPrefix("seen ") }
                #expect(problems.isEmpty, "\(problems.prefix(5))")
                #expect(try await store.read().tree == generationTree(sizes.count, count: sizes.last!))
            }
        }
    }

    @Test("the load guard: a transaction conditioned on an old revision does not apply")
    func guardRevision() async throws {
        try await EtcdServer.with { server in
            try await EtcdClient.withClient(settings: try server.clientSettings(prefix: "/g"), logger: quietLogger) { client in
                let store = try ConfigStore(client: client, logger: quietLogger)
                let before = try await client.range(store.treeRange, keysOnly: true)
                _ = try await client.put(key: Array("/g/general/INTRUDER".utf8), value: Array("1".utf8))
                let result = try await client.transaction(
                    conditions: [.modifiedBefore(store.treeRange, revision: before.revision + 1)],
                    operations: [.put(key: Array("/g/general/A".utf8), value: Array("1".utf8))]
                )
                #expect(!result.succeeded)
                #expect(try await store.read().tree.general == ["INTRUDER": "1"])
                // load() reads again and wins over the intruder.
                let report = try await store.load(ConfigTree(values: [.general("A"): "1"]))
                #expect(report.removed == 1)
                #expect(try await store.read().tree.general == ["A": "1"])
            }
        }
    }

    @Test("an unreachable or wrong endpoint is named in the error; the next endpoint takes over")
    func failover() async throws {
        try await EtcdServer.with { server in
            let dead = EtcdEndpoint(secure: false, host: "127.0.0.1", port: try freePort())
            // The peer port speaks HTTP but is not the client gateway: a misbehaving "etcd".
            let wrong = EtcdEndpoint(secure: false, host: "127.0.0.1", port: server.peerPort)
            var settings = try server.clientSettings(prefix: "/f")
            settings.endpoints = [dead, wrong]
            let deadOnly = settings
            try await EtcdClient.withClient(settings: deadOnly, logger: quietLogger) { client in
                let error = await #expect(throws: EtcdError.self) { try await ConfigStore(client: client).read() }
                let message = error.map { "\($0)" } ?? ""
                #expect(message.contains(dead.url) && message.contains("connection refused"), "\(message)")
                #expect(message.contains(wrong.url) && message.contains("not etcd's v3 JSON gateway"), "\(message)")
            }
            settings.endpoints = [dead, wrong, server.endpoint]
            let logs = OutputCollector()
            try await EtcdClient.withClient(settings: settings, logger: recordingLogger(logs)) { client in
                let store = try ConfigStore(client: client, logger: quietLogger)
                try await store.load(ConfigTree(values: [.general("A"): "1"]))
                #expect(try await store.read().tree.general == ["A": "1"])
            }
            #expect(logs.lines.contains { $0.contains(dead.url) })
        }
    }

    @Test("an endpoint that accepts but never answers times out, named; the next endpoint takes over")
    func timeout() async throws {
        try await EtcdServer.with { server in
            let silent = try SilentListener()
            let hanging = EtcdEndpoint(secure: false, host: "127.0.0.1", port: silent.port)
            var settings = try server.clientSettings(prefix: "/t", timeout: .milliseconds(500))
            settings.endpoints = [hanging]
            let hangingOnly = settings
            try await EtcdClient.withClient(settings: hangingOnly, logger: quietLogger) { client in
                let error = await #expect(throws: EtcdError.self) { try await ConfigStore(client: client).read() }
                let message = error.map { "\($0)" } ?? ""
                #expect(message.contains(hanging.url) && message.contains("answer within"), "\(message)")
            }
            settings.endpoints = [hanging, server.endpoint]
            try await EtcdClient.withClient(settings: settings, logger: quietLogger) { client in
                let store = try ConfigStore(client: client, logger: quietLogger)
                try await store.load(ConfigTree(values: [.general("A"): "1"]))
                // After the failover the working endpoint is asked first.
                #expect(try await store.read().tree.general == ["A": "1"])
            }
            _ = silent.port
        }
    }

    @Test("the launcher's environment: etcd general/ fills in, the container's environment wins")
    func launcher() async throws {
        try await EtcdServer.with { server in
            try await EtcdClient.withClient(settings: try server.clientSettings(prefix: "/l"), logger: quietLogger) { client in
                try await ConfigStore(client: client, logger: quietLogger).load(
                    ConfigTree(values: [.general("AUTO_ATTACH"): "yes", .general("SELECTED_NETWORK"): "10.42.0.0/16"])
                )
            }
            let container = ["ETCD_ENDPOINTS": server.endpoint.url, "ETCD_PREFIX": "/l", "AUTO_ATTACH": "no", "HOSTNAME": "kvm"]
            let environment = try await launcherEnvironment(container: container, logger: quietLogger)
            #expect(environment == container.merging(["SELECTED_NETWORK": "10.42.0.0/16"]) { $1 })
            // Without ETCD_ENDPOINTS etcd is not used at all.
            #expect(try await launcherEnvironment(container: ["AUTO_ATTACH": "yes"], logger: quietLogger) == ["AUTO_ATTACH": "yes"])
            // A configured but dead etcd is an error naming it.
            let dead = "http://127.0.0.1:\(try freePort())"
            let error = await #expect(throws: EtcdError.self) {
                try await launcherEnvironment(container: ["ETCD_ENDPOINTS": dead, "ETCD_TIMEOUT": "1"], logger: quietLogger)
            }
            #expect(error.map { "\($0)".contains(dead) } == true)
        }
    }

    @Test("secrets appear neither in logs nor in error messages")
    func secretsStayHidden() async throws {
        try await EtcdServer.with { server in
            let secret = "Sup3r-S3cret-Value"
            let etcdPassword = "etcd-Pa55word"
            let logs = OutputCollector()
            var settings = try server.clientSettings(prefix: "/s", credentials: .init(user: "nobody", password: etcdPassword))
            settings.endpoints.insert(EtcdEndpoint(secure: false, host: "127.0.0.1", port: try freePort()), at: 0)
            var messages: [String] = []
            try await EtcdClient.withClient(settings: settings, logger: recordingLogger(logs)) { client in
                let store = try ConfigStore(client: client, logger: recordingLogger(logs))
                let file = ConfigFileID(role: .compute, service: "nova", file: "nova.conf")
                let tree = ConfigTree(values: [
                    .general("NOVA_PASSWORD"): secret,
                    .setting(SettingKey(file: file, section: "DEFAULT", key: "transport_url")): "rabbit://u:\(secret)@$MISSING",
                ])
                try await store.load(tree)
                let snapshot = try await store.read()
                do {
                    _ = try ConfigRenderer(general: snapshot.tree.general, environment: [:]).render(file, from: snapshot.tree, into: nil)
                } catch {
                    messages.append("\(error)")
                }
            }
            // A bad line in an input file: the error names the place, not the content.
            let temporary = try TemporaryDirectory()
            defer { temporary.remove() }
            let directory = temporary.path
            try writeFile(directory + "/bad.conf", "general/NOVA_PASSWORD \(secret)\n")
            do { _ = try ConfigTree.read(paths: [directory]) } catch { messages.append("\(error)") }
            #expect(messages.count == 2)
            #expect(messages[0].contains("$MISSING"))
            for line in logs.lines + messages {
                #expect(!line.contains(secret) && !line.contains(etcdPassword), "\(line)")
            }
            #expect(!logs.lines.isEmpty)
        }
    }
}
