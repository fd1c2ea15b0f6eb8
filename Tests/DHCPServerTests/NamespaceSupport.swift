import DHCPServer
import Foundation
import Logging
import NetworkTypes
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a fresh thread that has `setns()`ed into the named network namespace
/// (/run/netns/NAME), then switches back. setns affects only the calling thread, and a socket
/// keeps the namespace it was created in, so this is how a test opens the server's sockets
/// inside its namespace without moving the whole test process.
func inNetworkNamespace<T: Sendable>(
    _ name: String, _ body: @escaping @Sendable () throws -> T
) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do {
                let target = open("/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
                let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
                defer {
                    if original >= 0 { close(original) }
                    if target >= 0 { close(target) }
                }
                guard target >= 0, original >= 0 else { throw FixtureError("cannot open namespace \(name): errno \(errno)") }
                guard setns(target, cloneNewNet) == 0 else { throw FixtureError("setns(\(name)) failed: errno \(errno)") }
                defer { _ = setns(original, cloneNewNet) }
                continuation.resume(returning: try body())
            } catch {
                continuation.resume(throwing: error)
            }
        }
        thread.start()
    }
}

/// CLONE_NEWNET from <sched.h>; the Glibc module exports neither it nor setns(2).
private let cloneNewNet: Int32 = 0x4000_0000

/// setns(2), looked up at run time because the Glibc module does not export it.
private func setns(_ fd: Int32, _ type: Int32) -> Int32 {
    typealias SetNS = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { return -1 }
    return unsafeBitCast(symbol, to: SetNS.self)(fd, type)
}

/// Writes a test file through an O_CLOEXEC descriptor. Tests run in parallel and spawn
/// processes all the time; a child inheriting a descriptor still open for writing would make
/// executing the file fail with ETXTBSY ("Text file busy") for as long as that child lives.
func writeFile(_ path: String, _ contents: String, executable: Bool = false) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, executable ? 0o755 : 0o644)
    guard fd >= 0 else { throw FixtureError("cannot create \(path): errno \(errno)") }
    defer { close(fd) }
    let bytes = Array(contents.utf8)
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    guard written == bytes.count else { throw FixtureError("cannot write \(path): errno \(errno)") }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The result of a finished process.
struct ProcessResult: Sendable {
    var status: Int32
    var output: String
    var succeeded: Bool { status == 0 }
}

/// Runs a command to completion without blocking a Swift concurrency thread; stdout and
/// stderr are merged. `timeout` (seconds) kills it with SIGKILL via coreutils `timeout`.
///
/// posix_spawn plus waitpid on a dedicated thread rather than Foundation's Process, which
/// waits for EOF on a pipe that a client daemonising in the background (dhclient) keeps open.
@discardableResult
func run(_ arguments: [String], timeout: Int = 30) async throws -> ProcessResult {
    let command = ["/usr/bin/timeout", "-s", "KILL", "\(timeout)"] + arguments
    let outputPath = NSTemporaryDirectory() + "dhcp-test-\(UUID().uuidString).out"
    defer { unlink(outputPath) }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)

    // Children start with no blocked signals and default dispositions: the test runner's
    // threads may block some (udhcpc would never see its SIGUSR1 otherwise).
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    var allSignals = sigset_t()
    sigfillset(&allSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    posix_spawnattr_setsigdefault(&attributes, &allSignals)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    var argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, command[0], &actions, &attributes, &argv, environ)
    guard spawned == 0 else { throw FixtureError("cannot start \(arguments.first ?? ""): errno \(spawned)") }

    let child = pid
    let status: Int32 = await withCheckedContinuation { continuation in
        let waiter = Thread {
            var status: Int32 = 0
            while waitpid(child, &status, 0) < 0 && errno == EINTR {}
            // Exit code when exited normally, else 128 + the signal number.
            continuation.resume(returning: status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F))
        }
        waiter.start()
    }
    let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    return ProcessResult(status: status, output: output)
}

/// Runs a command that must succeed (fixture building); throws with its output otherwise.
func must(_ arguments: [String]) async throws {
    let result = try await run(arguments, timeout: 20)
    guard result.succeeded else {
        throw FixtureError("\(arguments.joined(separator: " ")) exited \(result.status): \(result.output)")
    }
}

/// Two network namespaces joined by a veth pair: the server (container) side with a
/// link-local address, and the client (VM) side with a chosen MAC and nothing else.
struct VethFixture: Sendable {
    let serverNamespace: String
    let clientNamespace: String
    let serverInterface: String
    let clientInterface: String
    let clientMAC: MACAddress
    let serverAddress: IPv4Interface
    let tempDirectory: String

    static func randomSuffix() -> String {
        String((0..<6).map { _ in "0123456789abcdef".randomElement()! })
    }

    /// Builds the namespaces; on any failure removes whatever was created.
    /// `bridged`: the server side is a Linux bridge with the veth as its port (the
    /// USE_NET_BRIDGES layout), and ``serverInterface`` names the bridge.
    static func make(
        clientMAC: MACAddress = .randomLocal(), serverAddress: IPv4Interface = IPv4Interface("169.254.0.1/16")!,
        bridged: Bool = false
    ) async throws -> VethFixture {
        let suffix = randomSuffix()
        let fixture = VethFixture(
            serverNamespace: "dhcps-\(suffix)", clientNamespace: "dhcpc-\(suffix)",
            serverInterface: bridged ? "br\(suffix)" : "vs\(suffix)", clientInterface: "vc\(suffix)",
            clientMAC: clientMAC, serverAddress: serverAddress,
            tempDirectory: NSTemporaryDirectory() + "dhcp-\(suffix)")
        do {
            try FileManager.default.createDirectory(atPath: fixture.tempDirectory, withIntermediateDirectories: true)
            try await must(["ip", "netns", "add", fixture.serverNamespace])
            try await must(["ip", "netns", "add", fixture.clientNamespace])
            try await must(["ip", "link", "add", "vs\(suffix)", "netns", fixture.serverNamespace, "type", "veth",
                            "peer", "name", fixture.clientInterface, "netns", fixture.clientNamespace,
                            "address", clientMAC.description])
            if bridged {
                try await must(["ip", "-n", fixture.serverNamespace, "link", "add", fixture.serverInterface, "type", "bridge"])
                try await must(["ip", "-n", fixture.serverNamespace, "link", "set", "vs\(suffix)", "master", fixture.serverInterface, "up"])
            }
            try await must(["ip", "-n", fixture.serverNamespace, "addr", "add", serverAddress.description, "dev", fixture.serverInterface])
            for (namespace, interface) in [(fixture.serverNamespace, fixture.serverInterface), (fixture.clientNamespace, fixture.clientInterface)] {
                try await must(["ip", "-n", namespace, "link", "set", "lo", "up"])
                try await must(["ip", "-n", namespace, "link", "set", interface, "up"])
            }
        } catch {
            await fixture.destroy()
            throw error
        }
        return fixture
    }

    /// Kills every process left in either namespace (clients that daemonised), deletes both
    /// namespaces (which removes the veth pair) and the temp directory.
    func destroy() async {
        for namespace in [clientNamespace, serverNamespace] {
            let pids = (try? await run(["ip", "netns", "pids", namespace]))?.output
                .split(whereSeparator: \.isNewline).compactMap { Int32($0) } ?? []
            for pid in pids { kill(pid, SIGKILL) }
            _ = try? await run(["ip", "netns", "del", namespace])
        }
        try? FileManager.default.removeItem(atPath: tempDirectory)
    }

    /// Runs `command` inside the client namespace, also in fresh mount, UTS and PID namespaces:
    /// /etc is a copy-on-write overlay (upper layer on a tmpfs) so client scripts' temp files,
    /// resolv.conf bind mounts and hostname changes stay private to this run, and when the
    /// command exits the kernel kills and reaps whatever it left behind (dhclient's daemon,
    /// dhcpcd's privilege-separation helpers), so no client outlives its test. `setup` runs
    /// first, in that private view.
    func inClient(_ command: [String], setup: String = "", timeout: Int) async throws -> ProcessResult {
        let overlay = "\(tempDirectory)/etc-overlay"
        let privateEtc = "mkdir -p \(overlay) && mount -t tmpfs tmpfs \(overlay) && mkdir \(overlay)/upper \(overlay)/work"
            + " && mount -t overlay overlay -o lowerdir=/etc,upperdir=\(overlay)/upper,workdir=\(overlay)/work /etc"
        let script = ([privateEtc] + (setup.isEmpty ? [] : [setup]) + ["exec \"$@\""]).joined(separator: " && ")
        return try await run(["ip", "netns", "exec", clientNamespace, "unshare", "--uts", "--mount", "--pid", "--fork", "--",
                              "sh", "-c", script, "sh"] + command, timeout: timeout)
    }

    /// `ip -j ARGS` in the client namespace, decoded.
    func clientJSON(_ arguments: [String]) async throws -> [[String: Any]] {
        let result = try await run(["ip", "-j", "-n", clientNamespace] + arguments)
        guard result.succeeded, let data = result.output.data(using: .utf8),
              let json = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw FixtureError("ip -j \(arguments.joined(separator: " ")) failed: \(result.output)")
        }
        return json
    }

    /// The client interface's IPv4 addresses as ADDR/PREFIX.
    func clientAddresses() async throws -> [String] {
        let links = try await clientJSON(["-4", "addr", "show", "dev", clientInterface])
        return links.flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }.compactMap { info in
            guard let local = info["local"] as? String, let prefix = info["prefixlen"] as? Int else { return nil }
            return "\(local)/\(prefix)"
        }
    }

    /// The client's IPv4 routes as "DST via GW" / "DST dev", sorted ("default" for 0/0).
    func clientRoutes() async throws -> [String] {
        try await clientJSON(["-4", "route", "show", "table", "main"]).compactMap { route in
            guard let destination = route["dst"] as? String else { return nil }
            if let gateway = route["gateway"] as? String { return "\(destination) via \(gateway)" }
            return "\(destination) dev"
        }.sorted()
    }

    func clientMTU() async throws -> Int? {
        try await clientJSON(["link", "show", "dev", clientInterface]).first?["mtu"] as? Int
    }
}

/// Builds a fixture, runs `body` with it and always tears it down, also when `body` throws.
func withFixture<T: Sendable>(
    bridged: Bool = false, _ body: @Sendable (VethFixture) async throws -> T
) async throws -> T {
    let fixture = try await VethFixture.make(bridged: bridged)
    let result: Result<T, any Error>
    do {
        result = .success(try await body(fixture))
    } catch {
        result = .failure(error)
    }
    await fixture.destroy()
    return try result.get()
}

/// A log handler that keeps every message, so tests can see what the server decided.
final class RecordingLogHandler: LogHandler, Sendable {
    private let storage: Mutex<[String]> = Mutex([])
    private let level: Mutex<Logger.Level> = Mutex(.trace)
    private let meta: Mutex<Logger.Metadata> = Mutex([:])

    var messages: [String] { storage.withLock { $0 } }

    var logLevel: Logger.Level {
        get { level.withLock { $0 } }
        set { level.withLock { $0 = newValue } }
    }

    var metadata: Logger.Metadata {
        get { meta.withLock { $0 } }
        set { meta.withLock { $0 = newValue } }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { meta.withLock { $0[key] } }
        set { meta.withLock { $0[key] = newValue } }
    }

    func log(event: LogEvent) {
        storage.withLock { $0.append("\(event.level): \(event.message)") }
    }
}

/// Starts a server for `lease` on the fixture's server side, runs `body`, then stops the
/// server and waits for it, also when `body` throws. Returns the server's log lines too.
func withServer<T: Sendable>(
    _ fixture: VethFixture, lease: DHCPLease, _ body: @Sendable () async throws -> T
) async throws -> (T, [String]) {
    let recorder = RecordingLogHandler()
    let logger = Logger(label: "dhcp-test") { _ in recorder }
    let interface = fixture.serverInterface
    let server = try await inNetworkNamespace(fixture.serverNamespace) {
        try DHCPServer(interfaceName: interface, lease: lease, logger: logger)
    }
    let serving = Task { try await server.run() }
    let result: Result<T, any Error>
    do {
        result = .success(try await body())
    } catch {
        result = .failure(error)
    }
    server.stop()
    try await serving.value
    return (try result.get(), recorder.messages)
}
