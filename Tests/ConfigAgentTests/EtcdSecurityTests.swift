import Foundation
import TestSupport
import Testing

@testable import ConfigAgent

/// TLS with client certificates, and etcd's user/password authentication.
@Suite("etcd TLS and authentication")
struct EtcdSecurityTests {
    @Test("TLS with client certificate authentication: works with the right files, fails clearly without")
    func tls() async throws {
        try await EtcdServer.with(tls: true) { server in
            let settings = try server.clientSettings(prefix: "/tls")
            #expect(settings.endpoints[0].url.hasPrefix("https://"))
            try await EtcdClient.withClient(settings: settings, logger: quietLogger) { client in
                let store = try ConfigStore(client: client, logger: quietLogger)
                try await store.load(ConfigTree(values: [.general("A"): "over TLS"]))
                #expect(try await store.readGeneral().variables == ["A": "over TLS"])
            }

            // Without a client certificate the server refuses the handshake.
            var noClientCertificate = settings
            noClientCertificate.tls = .init(caFile: settings.tls.caFile)
            let refused = await #expect(throws: EtcdError.self) {
                try await EtcdClient.withClient(settings: noClientCertificate, logger: quietLogger) { client in
                    try await ConfigStore(client: client).readGeneral()
                }
            }
            let refusedMessage = refused.map { "\($0)" } ?? ""
            #expect(refusedMessage.contains(server.endpoint.url) && refusedMessage.contains("client certificate"), "\(refusedMessage)")

            // A CA that did not sign the server certificate: the client refuses the server.
            let temporary = try TemporaryDirectory()
            defer { temporary.remove() }
            let otherDirectory = temporary.path
            let other = try TestCertificates.generate(in: otherDirectory)
            var wrongCA = settings
            wrongCA.tls.caFile = other.caFile
            let untrusted = await #expect(throws: EtcdError.self) {
                try await EtcdClient.withClient(settings: wrongCA, logger: quietLogger) { client in
                    try await ConfigStore(client: client).readGeneral()
                }
            }
            let message = untrusted.map { "\($0)" } ?? ""
            #expect(message.contains(server.endpoint.url) && message.contains("not trusted"), "\(message)")
        }
    }

    /// The watch is one endless chunked answer: over TLS its chunks arrive through NIOSSL and the HTTP/1.1 decoder.
    @Test("a watch over TLS with a client certificate delivers a change as it happens", .timeLimit(.minutes(1)))
    func watchOverTLS() async throws {
        struct Delivered: Error { var batch: EtcdWatchBatch }
        try await EtcdServer.with(tls: true) { server in
            let settings = try server.clientSettings(prefix: "/tlsw")
            try await EtcdClient.withClient(settings: settings, logger: quietLogger) { client in
                let range = EtcdKeyRange.prefix("/tlsw/")
                let start = try await client.range(range).revision
                let watching = Task {
                    do {
                        try await client.watch(range, from: start + 1) { batch in throw Delivered(batch: batch) }
                    } catch let delivered as Delivered {
                        return delivered.batch
                    }
                }
                let written = try await client.put(key: Array("/tlsw/general/A".utf8), value: Array("over a TLS watch".utf8))
                let batch = try await watching.value
                #expect(batch.revision == written)
                #expect(batch.events == [EtcdWatchEvent(
                    kind: .put,
                    keyValue: EtcdKeyValue(key: Array("/tlsw/general/A".utf8), value: Array("over a TLS watch".utf8), modRevision: written))])
            }
        }
    }

    @Test("a missing TLS file is reported before any connection")
    func missingTLSFile() throws {
        let settings = try EtcdSettings(
            endpoints: [EtcdEndpoint(secure: true, host: "127.0.0.1", port: 2379)],
            tls: .init(caFile: "/nonexistent/ca.pem")
        )
        let error = #expect(throws: EtcdError.self) { _ = try EtcdClient(settings: settings) }
        guard case .tlsFile(let path, _)? = error else {
            Issue.record("expected a TLS file error, got \(String(describing: error))")
            return
        }
        #expect(path == "/nonexistent/ca.pem")
    }

    @Test("user/password authentication: token use, wrong password, no user, no permission, token renewal")
    func authentication() async throws {
        try await EtcdServer.with { server in
            let password = "agent-Pa55!"
            _ = try server.etcdctl(["user", "add", "root", "--new-user-password", "root-pw"])
            _ = try server.etcdctl(["user", "grant-role", "root", "root"])
            _ = try server.etcdctl(["role", "add", "config"])
            _ = try server.etcdctl(["role", "grant-permission", "config", "--prefix=true", "readwrite", "/auth/"])
            _ = try server.etcdctl(["user", "add", "agent", "--new-user-password", password])
            _ = try server.etcdctl(["user", "grant-role", "agent", "config"])
            _ = try server.etcdctl(["auth", "enable"])

            let agent = try server.clientSettings(prefix: "/auth", credentials: .init(user: "agent", password: password))
            try await EtcdClient.withClient(settings: agent, logger: quietLogger) { client in
                let store = try ConfigStore(client: client, logger: quietLogger)
                try await store.load(ConfigTree(values: [.general("A"): "1"]))
                #expect(try await store.readGeneral().variables == ["A": "1"])

                // The same client after an etcd restart: its token is gone, it authenticates again.
                await server.stop()
                try await server.start()
                try await store.load(ConfigTree(values: [.general("A"): "2"]))
                #expect(try await store.readGeneral().variables == ["A": "2"])

                // Outside the granted prefix.
                let denied = await #expect(throws: EtcdError.self) { try await ConfigStore(client: client, prefix: "/elsewhere").read() }
                #expect(denied == .permissionDenied(endpoint: server.endpoint.url))
            }

            var wrong = agent
            wrong.credentials = .init(user: "agent", password: "not-the-password")
            let rejected = await #expect(throws: EtcdError.self) {
                try await EtcdClient.withClient(settings: wrong, logger: quietLogger) { try await ConfigStore(client: $0).read() }
            }
            #expect(rejected == .authenticationFailed(endpoint: server.endpoint.url, user: "agent"))
            #expect(rejected.map { !"\($0)".contains("not-the-password") } == true)

            var anonymous = agent
            anonymous.credentials = nil
            let required = await #expect(throws: EtcdError.self) {
                try await EtcdClient.withClient(settings: anonymous, logger: quietLogger) { try await ConfigStore(client: $0).read() }
            }
            #expect(required == .authenticationRequired(endpoint: server.endpoint.url))

            // etcdctl sees what the agent loaded.
            let seen = try server.etcdctl(["get", "/auth/general/A", "--print-value-only"], user: "root:root-pw")
            #expect(seen.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "2")
        }
    }
}
