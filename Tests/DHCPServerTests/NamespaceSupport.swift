import DHCPServer
import Foundation
import Logging
import NetworkTypes
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Runs a fixture command that must succeed; throws with its output otherwise.
func must(_ arguments: [String]) async throws {
    try await runAsync(arguments, timeout: 20)
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

    /// Builds the namespaces; on any failure removes whatever was created.
    /// `bridged`: the server side is a Linux bridge with the veth as its port (the
    /// USE_NET_BRIDGES layout), and ``serverInterface`` names the bridge.
    static func make(
        clientMAC: MACAddress = .randomLocal(), serverAddress: IPv4Interface = IPv4Interface("169.254.0.1/16")!,
        bridged: Bool = false
    ) async throws -> VethFixture {
        // Blocking commands, on their own thread: the servers of tests running meanwhile need the pool.
        try await onOwnThread {
            let (server, client) = try TestNamespace.pair("dhcps", "dhcpc")
            let suffix = server.name.split(separator: "-").last.map(String.init) ?? uniqueSuffix()
            let fixture = VethFixture(
                serverNamespace: server.name, clientNamespace: client.name,
                serverInterface: bridged ? "br\(suffix)" : "vs\(suffix)", clientInterface: "vc\(suffix)",
                clientMAC: clientMAC, serverAddress: serverAddress,
                tempDirectory: NSTemporaryDirectory() + "dhcp-\(suffix)")
            do {
                try FileManager.default.createDirectory(atPath: fixture.tempDirectory, withIntermediateDirectories: true)
                try server.addVeth("vs\(suffix)", peer: client, peerName: fixture.clientInterface, peerMAC: clientMAC.description)
                if bridged {
                    try server.ip("link add \(fixture.serverInterface) type bridge")
                    try server.ip("link set vs\(suffix) master \(fixture.serverInterface) up")
                }
                try server.ip("addr add \(serverAddress) dev \(fixture.serverInterface)")
                try server.ip("link set \(fixture.serverInterface) up")
                try client.ip("link set \(fixture.clientInterface) up")
            } catch {
                fixture.destroyNow()
                throw error
            }
            return fixture
        }
    }

    /// Kills every process left in either namespace (clients that daemonised), deletes both
    /// namespaces (which removes the veth pair) and the temp directory.
    func destroy() async {
        let fixture = self
        _ = try? await onOwnThread { fixture.destroyNow() }
    }

    /// ``destroy()`` on the calling thread.
    func destroyNow() {
        for namespace in [clientNamespace, serverNamespace] { TestNamespace(existing: namespace).destroy() }
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
        return try await runAsync(["ip", "netns", "exec", clientNamespace, "unshare", "--uts", "--mount", "--pid", "--fork", "--",
                                   "sh", "-c", script, "sh"] + command, mergeOutput: true, check: false, timeout: TimeInterval(timeout))
    }

    /// `ip -j ARGS` in the client namespace, decoded.
    func clientJSON(_ arguments: [String]) async throws -> [[String: Any]] {
        let result = try await runAsync(["ip", "-j", "-n", clientNamespace] + arguments)
        guard let data = result.stdout.data(using: .utf8),
              let json = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw FixtureFailure("ip -j \(arguments.joined(separator: " ")) failed: \(result.output)")
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

/// Starts a responder (made inside the fixture's server namespace by `make`, given the server
/// interface and a recording logger) and runs it while `body` runs; then stops it and waits for it,
/// also when `body` throws. Returns the responder's log lines too.
func withResponder<Server: Sendable, T: Sendable>(
    _ fixture: VethFixture, make: @escaping @Sendable (String, Logger) throws -> Server,
    run serve: @escaping @Sendable (Server) async throws -> Void, stop: (Server) -> Void,
    _ body: @Sendable () async throws -> T
) async throws -> (T, [String]) {
    let log = OutputCollector()
    let logger = recordingLogger(log, label: "responder-test")
    let interface = fixture.serverInterface
    let server = try await inNetworkNamespace(fixture.serverNamespace) { try make(interface, logger) }
    let serving = Task { try await serve(server) }
    let result: Result<T, any Error>
    do {
        result = .success(try await body())
    } catch {
        result = .failure(error)
    }
    stop(server)
    try await serving.value
    return (try result.get(), log.lines)
}

/// ``withResponder(_:make:run:stop:_:)`` with a DHCPv4 server for `lease`.
func withServer<T: Sendable>(
    _ fixture: VethFixture, lease: DHCPLease, _ body: @Sendable () async throws -> T
) async throws -> (T, [String]) {
    try await withResponder(fixture, make: { try DHCPServer(interfaceName: $0, lease: lease, logger: $1) },
                            run: { try await $0.run() }, stop: { $0.stop() }, body)
}
