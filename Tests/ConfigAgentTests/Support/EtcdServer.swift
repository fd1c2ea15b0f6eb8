import Foundation
import TestSupport
import Logging

@testable import ConfigAgent

#if canImport(Glibc)
import Glibc
#endif

/// TLS material for a server started with client-certificate authentication.
struct TestCertificates: Sendable {
    var caFile: String
    var serverCertificate: String
    var serverKey: String
    var clientCertificate: String
    var clientKey: String

    /// Generates a CA, a server certificate for 127.0.0.1 and a client certificate with the openssl CLI.
    static func generate(in directory: String) throws -> TestCertificates {
        let certificates = TestCertificates(
            caFile: directory + "/ca.crt",
            serverCertificate: directory + "/server.crt",
            serverKey: directory + "/server.key",
            clientCertificate: directory + "/client.crt",
            clientKey: directory + "/client.key"
        )
        func openssl(_ arguments: [String]) throws {
            let result = try run(["/usr/bin/openssl"] + arguments, check: false)
            guard result.status == 0 else { throw TestHarnessError("openssl \(arguments.first ?? "") failed: \(result.stderr)") }
        }
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try openssl(["req", "-x509"] + curve + ["-keyout", directory + "/ca.key", "-out", certificates.caFile, "-subj", "/CN=config-agent-test-ca", "-days", "2"])
        // etcd's gateway dials its own gRPC port with the server certificate, so with
        // --client-cert-auth that certificate must be good for client auth too.
        for (name, usage, san) in [("server", "serverAuth,clientAuth", "subjectAltName=IP:127.0.0.1\n"), ("client", "clientAuth", "")] {
            try writeFile("\(directory)/\(name).ext", "\(san)extendedKeyUsage=\(usage)\n")
            try openssl(["req"] + curve + ["-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).csr", "-subj", "/CN=\(name)"])
            try openssl([
                "x509", "-req", "-in", "\(directory)/\(name).csr", "-CA", certificates.caFile, "-CAkey", directory + "/ca.key",
                "-CAcreateserial", "-out", "\(directory)/\(name).crt", "-days", "2", "-extfile", "\(directory)/\(name).ext",
            ])
        }
        return certificates
    }
}

struct TestHarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A real etcd (Debian's etcd-server) on loopback ports of its own, data in a temporary directory.
actor EtcdServer {
    let clientPort: Int
    let peerPort: Int
    let directory: String
    let tls: TestCertificates?
    let extraArguments: [String]
    private var process: Process?

    nonisolated var endpoint: EtcdEndpoint { EtcdEndpoint(secure: tls != nil, host: "127.0.0.1", port: clientPort) }

    /// Starts a server and runs `body` with it; the server is stopped and its data deleted afterwards.
    static func with<T: Sendable>(
        tls: Bool = false,
        arguments: [String] = [],
        _ body: (EtcdServer) async throws -> T
    ) async throws -> T {
        try await withTemporaryDirectory { directory in
            let certificates = tls ? try TestCertificates.generate(in: directory) : nil
            let server = try EtcdServer(directory: directory, tls: certificates, arguments: arguments)
            do {
                try await server.start()
                let result = try await body(server)
                await server.stop()
                return result
            } catch {
                await server.stop()
                throw error
            }
        }
    }

    private init(directory: String, tls: TestCertificates?, arguments: [String]) throws {
        self.directory = directory
        self.tls = tls
        self.extraArguments = arguments
        clientPort = try freePort()
        var peer = try freePort()
        while peer == clientPort { peer = try freePort() }
        peerPort = peer
    }

    /// Starts etcd (again, after ``stop()``, with the same ports and data) and waits until it answers.
    func start() async throws {
        let scheme = tls == nil ? "http" : "https"
        let clientURL = "\(scheme)://127.0.0.1:\(clientPort)"
        let peerURL = "http://127.0.0.1:\(peerPort)"
        var arguments = [
            "--name", "test", "--data-dir", directory + "/data",
            "--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
            "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
            "--initial-cluster", "test=\(peerURL)",
            "--logger", "zap", "--log-outputs", directory + "/etcd.log", "--log-level", "warn",
        ]
        if let tls {
            arguments += [
                "--cert-file", tls.serverCertificate, "--key-file", tls.serverKey,
                "--trusted-ca-file", tls.caFile, "--client-cert-auth",
            ]
        }
        arguments += extraArguments
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/etcd")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        try await waitUntilReady()
    }

    /// Polls a range call until etcd serves it (or gives up after 20 s).
    private func waitUntilReady() async throws {
        let client = try EtcdClient(settings: try clientSettings(timeout: .seconds(1)), logger: quietLogger)
        do {
            try await pollUntilReady(client)
            try await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func pollUntilReady(_ client: EtcdClient) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            guard process?.isRunning == true else {
                throw TestHarnessError("etcd exited during start: \((try? readFile(directory + "/etcd.log")) ?? "")")
            }
            // Any answer from etcd itself counts (with auth enabled it may be "user name is empty").
            var lastError = ""
            do {
                _ = try await client.range(EtcdKeyRange(key: Array("/ready".utf8), end: nil))
                return
            } catch EtcdError.unreachable(let failures) {
                lastError = failures.map(\.description).joined(separator: "; ")
            } catch {
                return
            }
            if ContinuousClock.now > deadline { throw TestHarnessError("etcd did not become ready on port \(clientPort): \(lastError)") }
            try await Task.sleep(for: .milliseconds(30))
        }
    }

    /// Stops etcd (SIGTERM, SIGKILL after 5 s) and waits for it to exit. The data stays until the test ends.
    func stop() async {
        guard let process, process.isRunning else { return }
        let pid = process.processIdentifier
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning {
            if ContinuousClock.now > deadline { kill(pid, SIGKILL) }
            try? await Task.sleep(for: .milliseconds(20))
        }
        self.process = nil
    }

    /// Client settings for this server (client certificate included when TLS is on).
    nonisolated func clientSettings(
        prefix: String = EtcdSettings.defaultPrefix,
        credentials: EtcdSettings.Credentials? = nil,
        timeout: Duration = .seconds(10),
        maxTxnOperations: Int = EtcdSettings.defaultMaxTxnOperations
    ) throws -> EtcdSettings {
        var files = EtcdSettings.TLSFiles()
        if let tls {
            files = EtcdSettings.TLSFiles(caFile: tls.caFile, certificateFile: tls.clientCertificate, keyFile: tls.clientKey)
        }
        return try EtcdSettings(
            endpoints: [EtcdEndpoint(secure: tls != nil, host: "127.0.0.1", port: clientPort)],
            prefix: prefix,
            tls: files,
            credentials: credentials,
            connectTimeout: .milliseconds(500),
            requestTimeout: timeout,
            maxTxnOperations: maxTxnOperations
        )
    }

    /// Runs etcdctl (etcd-client package) against this server.
    nonisolated func etcdctl(_ arguments: [String], user: String? = nil) throws -> ProcessResult {
        var all = ["--endpoints", "\(tls == nil ? "http" : "https")://127.0.0.1:\(clientPort)"]
        if let tls { all += ["--cacert", tls.caFile, "--cert", tls.clientCertificate, "--key", tls.clientKey] }
        if let user { all += ["--user", user] }
        let result = try run(["/usr/bin/etcdctl"] + all + arguments, environment: ["ETCDCTL_API": "3"], check: false)
        guard result.status == 0 else { throw TestHarnessError("etcdctl \(arguments.joined(separator: " ")) failed: \(result.stderr)") }
        return result
    }
}

/// A logger that drops everything (tests assert on values, not logs).
let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
