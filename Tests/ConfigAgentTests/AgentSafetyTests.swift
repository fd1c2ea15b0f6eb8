import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import ConfigAgent

#if canImport(Glibc)
import Glibc
#endif

/// render never writes through a symbolic link at its target nor takes owner or mode from what
/// the link points to.
@Suite("render refuses links at the target")
struct RenderLinkTests {
    private let file = try! ConfigFileID(path: "compute/x/x.conf")
    private var tree: ConfigTree {
        ConfigTree(values: [.setting(SettingKey(file: file, section: "s", key: "password")): "secret-value"])
    }

    private func lstatInfo(_ path: String) -> stat? {
        var info = stat()
        return lstat(path, &info) == 0 ? info : nil
    }

    @Test("a link to an existing file: refused, the file it points to untouched, the link kept")
    func linkToFile() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        let victim = directory + "/victim"
        try writeFile(victim, "victim text\n")
        chmod(victim, 0o644)
        if isRoot { #expect(chown(victim, 65534, 65534) == 0) }
        try FileManager.default.createDirectory(atPath: directory + "/etc", withIntermediateDirectories: true)
        #expect(symlink(victim, directory + "/etc/x.conf") == 0)

        let error = #expect(throws: AtomicFileError.self) {
            try ConfigRenderer(general: [:], environment: [:]).write(file, from: tree, into: directory + "/etc")
        }
        #expect(error == .symbolicLink(directory + "/etc/x.conf"))
        #expect(error?.description.contains("symbolic link") == true)
        // The failure happened before anything was written: the victim, the link and the folder are as they were.
        #expect(try readFile(victim) == "victim text\n")
        #expect(lstatInfo(victim).map { $0.st_mode & 0o7777 } == 0o644)
        #expect(lstatInfo(directory + "/etc/x.conf").map { $0.st_mode & S_IFMT } == S_IFLNK)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/etc") == ["x.conf"])
        // Writing the file directly is refused the same way (no owner or mode copied from the target).
        #expect(throws: AtomicFileError.symbolicLink(directory + "/etc/x.conf")) {
            try AtomicFile.write("new\n", to: directory + "/etc/x.conf")
        }
        #expect(try readFile(victim) == "victim text\n")
    }

    @Test("a dangling link: refused, nothing created where it points")
    func danglingLink() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        #expect(symlink(directory + "/elsewhere", directory + "/x.conf") == 0)
        #expect(throws: AtomicFileError.symbolicLink(directory + "/x.conf")) {
            try ConfigRenderer(general: [:], environment: [:]).write(file, from: tree, into: directory)
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/elsewhere"))
        #expect(lstatInfo(directory + "/x.conf").map { $0.st_mode & S_IFMT } == S_IFLNK)
    }

    @Test("reading for --stdout does not follow a link either")
    func readRefusesLink() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        try writeFile(directory + "/real", "[s]\nk = v\n")
        #expect(symlink(directory + "/real", directory + "/x.conf") == 0)
        #expect(throws: AtomicFileError.symbolicLink(directory + "/x.conf")) { try AtomicFile.read(directory + "/x.conf") }
    }

    @Test("a directory at the target is refused with its own message")
    func directoryAtTarget() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        try FileManager.default.createDirectory(atPath: directory + "/x.conf", withIntermediateDirectories: true)
        let error = #expect(throws: AtomicFileError.self) {
            try ConfigRenderer(general: [:], environment: [:]).write(file, from: tree, into: directory)
        }
        #expect(error == .notRegularFile(directory + "/x.conf"))
    }

    @Test("a new file is 0640 whatever the umask")
    func newFileModeUnderOpenUmask() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        let previous = umask(0)
        defer { umask(previous) }
        try ConfigRenderer(general: [:], environment: [:]).write(file, from: tree, into: directory)
        #expect(lstatInfo(directory + "/x.conf").map { $0.st_mode & 0o7777 } == 0o640)
    }
}

/// Errors and logs about a secret key's value name the key and the problem, never any of the value.
@Suite("no secret fragments in errors or logs")
struct SecretFragmentTests {
    static let file = try! ConfigFileID(path: "compute/nova/nova.conf")

    /// (key, value, fragments that must not appear, what the message must say)
    static let cases: [(String, String, [String], String)] = [
        ("password", "Xy7$Kq9zTw", ["Kq9zTw", "Xy7"], "has no value"),
        ("admin_token", "ab${cd-SECRET", ["cd-SECRET", "${cd"], "malformed"),
        ("metadata_proxy_shared_secret", "s3cr${}", ["s3cr"], "malformed"),
    ]

    @Test("render errors name the key, not the value", arguments: cases.indices)
    func renderError(index: Int) throws {
        let (key, value, fragments, problem) = Self.cases[index]
        let setting = SettingKey(file: Self.file, section: "keystone_authtoken", key: key)
        let tree = ConfigTree(values: [.setting(setting): value])
        let error = #expect(throws: RenderError.self) {
            try ConfigRenderer(general: [:], environment: [:]).render(Self.file, from: tree, into: nil)
        }
        let message = try #require(error).description
        #expect(message.contains(setting.path), "\(message)")
        #expect(message.contains(problem), "\(message)")
        for fragment in fragments { #expect(!message.contains(fragment), "'\(fragment)' leaked: \(message)") }
    }

    @Test("a non-secret key's error still names the variable")
    func nonSecretNamesVariable() throws {
        let setting = SettingKey(file: Self.file, section: "DEFAULT", key: "my_ip")
        let tree = ConfigTree(values: [.setting(setting): "$NOT_DEFINED"])
        let error = #expect(throws: RenderError.self) {
            try ConfigRenderer(general: [:], environment: [:]).render(Self.file, from: tree, into: nil)
        }
        #expect(error?.description.contains("$NOT_DEFINED") == true)
    }

    @Test("watch: neither its log nor its round report carries a fragment")
    func watchLogs() async throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        var values: [ConfigKey: String] = [:]
        for (key, value, _, _) in Self.cases {
            values[.setting(SettingKey(file: Self.file, section: "keystone_authtoken", key: key))] = value
        }
        let sink = OutputCollector()
        // No request is made: the round renders a snapshot handed to it.
        let client = try EtcdClient(settings: try EtcdSettings(endpoints: [EtcdEndpoint(secure: false, host: "127.0.0.1", port: 9)]), logger: quietLogger)
        let watcher = ConfigWatcher(
            store: try ConfigStore(client: client, logger: quietLogger),
            targets: [RenderTarget(file: Self.file, directory: directory)],
            environment: [:],
            logger: recordingLogger(sink)
        )
        let round = await watcher.renderRound(ConfigStore.Snapshot(revision: 7, tree: ConfigTree(values: values), ignoredKeys: []))
        try await client.shutdown()
        // The failure happened and was reported and logged, without the value.
        #expect(round.failures.count == 1, "\(round.failures)")
        #expect(sink.lines.contains { $0.contains("cannot render") }, "\(sink.lines)")
        let everything = round.failures.joined(separator: "\n") + "\n" + sink.text
        for (_, _, fragments, _) in Self.cases {
            for fragment in fragments { #expect(!everything.contains(fragment), "'\(fragment)' leaked: \(everything)") }
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/nova.conf"))
    }
}

/// ETCD_TIMEOUT bounds the whole exchange with one endpoint, and is itself bounded.
@Suite("etcd deadline", .serialized)
struct EtcdDeadlineTests {
    @Test(
        "ETCD_TIMEOUT outside 0.1 s to 1 h is refused",
        arguments: ["1e-300", "0", "0.05", "0.0999", "3600.5", "1e9", "inf", "nan", "-1"]
    )
    func timeoutBounds(text: String) {
        let error = #expect(throws: EtcdSettingsError.self) {
            try EtcdSettings.fromEnvironment(["ETCD_ENDPOINTS": "http://h", "ETCD_TIMEOUT": text])
        }
        #expect(error.map { "\($0)".contains("ETCD_TIMEOUT") } == true)
    }

    @Test("ETCD_TIMEOUT at the bounds is accepted", arguments: [("0.1", 100), ("3600", 3_600_000), ("2.5", 2500)])
    func timeoutAccepted(text: String, milliseconds: Int64) throws {
        let settings = try #require(try EtcdSettings.fromEnvironment(["ETCD_ENDPOINTS": "http://h", "ETCD_TIMEOUT": text]))
        #expect(settings.requestTimeout == .milliseconds(milliseconds))
    }

    @Test("settings built in code are bounded the same way")
    func initBounds() {
        let endpoint = EtcdEndpoint(secure: false, host: "h", port: 2379)
        #expect(throws: EtcdSettingsError.self) { try EtcdSettings(endpoints: [endpoint], requestTimeout: .zero) }
        #expect(throws: EtcdSettingsError.self) { try EtcdSettings(endpoints: [endpoint], requestTimeout: .seconds(3601)) }
    }

    /// A server that answers `200 OK` with its headers at once, then the body one byte every
    /// `interval`: each read gets something well within any read timeout, so only a deadline on the
    /// whole exchange stops it.
    @Test("config env against a slow-drip server gives up at ETCD_TIMEOUT, mid-drip")
    func configEnvSlowDrip() async throws {
        let server = try SlowDripServer(bytes: 60, interval: .milliseconds(250))
        defer { server.stop() }
        let endpoint = "http://127.0.0.1:\(server.port)"
        let result = try bounded(
            LauncherFromEtcdTests.binary, ["config", "env"],
            environment: ["PATH": "/usr/bin:/bin", "ETCD_ENDPOINTS": endpoint, "ETCD_TIMEOUT": "1"])
        let report = server.stop()
        #expect(result.status != 0)
        #expect(result.stderr.contains(endpoint) && result.stderr.contains("no complete answer within"), "\(result.stderr)")
        // The server was really reached and really dripping, and the client hung up before the end.
        #expect(report.connections >= 1, "\(report)")
        #expect(report.sentBodyBytes > 0, "\(report)")
        #expect(report.clientClosedEarly, "\(report)")
    }

    @Test("the launcher against a slow-drip server stops at ETCD_TIMEOUT with one line")
    func launcherSlowDrip() async throws {
        let server = try SlowDripServer(bytes: 60, interval: .milliseconds(250))
        defer { server.stop() }
        let endpoint = "http://127.0.0.1:\(server.port)"
        let result = try bounded(
            LauncherFromEtcdTests.binary, ["--list-ifaces", "--json"],
            environment: ["PATH": "/usr/bin:/bin", "ETCD_ENDPOINTS": endpoint, "ETCD_TIMEOUT": "1"])
        let report = server.stop()
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty, "\(result.stdout)")
        let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
        #expect(errors.count == 1, "\(result.stderr)")
        #expect(errors.first.map { $0.contains(endpoint) && $0.contains("no complete answer within") } == true, "\(result.stderr)")
        #expect(report.sentBodyBytes > 0 && report.clientClosedEarly, "\(report)")
    }
}

/// A loopback HTTP server that drips its answer (see ``EtcdDeadlineTests``). Runs on its own thread
/// until ``stop()`` or until it has dripped every byte to every connection.
final class SlowDripServer: Sendable {
    struct Report: Sendable, CustomStringConvertible {
        var connections = 0
        var sentBodyBytes = 0
        /// The client closed a connection before the whole body was sent.
        var clientClosedEarly = false
        var description: String { "connections \(connections), body bytes sent \(sentBodyBytes), client closed early \(clientClosedEarly)" }
    }

    let port: Int
    private let listener: Int32
    private let state = Mutex<(report: Report, stopping: Bool, finished: Bool, closed: Bool)>((Report(), false, false, false))

    init(bytes: Int, interval: Duration) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)  // the programs under test must not inherit it
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ready = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                bind(fd, sockaddrPointer, length) == 0 && getsockname(fd, sockaddrPointer, &length) == 0 && listen(fd, 8) == 0
            }
        }
        guard ready else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let milliseconds = Int32(interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000)
        let thread = Thread { [self] in serve(bytes: bytes, intervalMilliseconds: milliseconds) }
        thread.start()
    }

    private var stopping: Bool { state.withLock { $0.stopping } }

    private func serve(bytes: Int, intervalMilliseconds: Int32) {
        defer { state.withLock { $0.finished = true } }
        while !stopping {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) > 0 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            state.withLock { $0.report.connections += 1 }
            drip(connection, bytes: bytes, intervalMilliseconds: intervalMilliseconds)
            close(connection)
        }
    }

    private func drip(_ connection: Int32, bytes: Int, intervalMilliseconds: Int32) {
        // Read the request head (what arrives first is enough: the answer does not depend on it).
        var buffer = [UInt8](repeating: 0, count: 65536)
        _ = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(bytes)\r\n\r\n"
        guard send(connection, head, head.utf8.count, Int32(MSG_NOSIGNAL)) == head.utf8.count else { return }
        for index in 0..<bytes {
            if stopping { return }
            var byte: UInt8 = index == 0 ? UInt8(ascii: "{") : UInt8(ascii: " ")
            guard send(connection, &byte, 1, Int32(MSG_NOSIGNAL)) == 1 else {
                state.withLock { $0.report.clientClosedEarly = true }
                return
            }
            state.withLock { $0.report.sentBodyBytes += 1 }
            // The whole body is out: a hang-up now is not early.
            if index == bytes - 1 { return }
            // Wait one interval, noticing a hang-up (a read of 0 bytes) at once.
            var poller = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, intervalMilliseconds) > 0 {
                let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
                if count <= 0 {
                    state.withLock { $0.report.clientClosedEarly = true }
                    return
                }
            }
        }
    }

    /// Stops serving, waits (bounded) for the serving thread to finish, and says what happened.
    @discardableResult
    func stop() -> Report {
        state.withLock { $0.stopping = true }
        for _ in 0..<200 where !state.withLock({ $0.finished }) { usleep(10_000) }
        return state.withLock { state in
            if state.finished && !state.closed {
                close(listener)
                state.closed = true
            }
            return state.report
        }
    }
}
