import Foundation
import Logging
import TestSupport
import Testing
@testable import ConfigAgent

/// The `kvm-launch` binary itself takes its settings from etcd's `general/` when ETCD_ENDPOINTS is
/// set, before it decides anything; its own environment wins. `--list-ifaces --json` shows the
/// effect without changing anything.
@Suite(.serialized)
struct LauncherFromEtcdTests {
    /// The `kvm-launch` built with the tests; `CONFIG_AGENT_TEST_KVM_LAUNCH` names another one (to show
    /// that these tests fail against an older build).
    static var binary: String {
        if let other = ProcessInfo.processInfo.environment["CONFIG_AGENT_TEST_KVM_LAUNCH"], !other.isEmpty { return other }
        return URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("kvm-launch").path
    }

    /// One row of `kvm-launch --list-ifaces --json` (the fields these tests read).
    struct Row: Decodable, Hashable {
        var name: String
        var attach: Bool
        var reason: String
    }

    /// Runs `kvm-launch --list-ifaces --json`; a zero exit must come with a JSON listing (a parse
    /// failure fails the test rather than making the checks vacuous).
    static func listing(_ environment: [String: String]) throws -> (status: Int32, rows: [Row], stderr: String) {
        let result = try run([binary, "--list-ifaces", "--json"], environment: environment, check: false)
        guard result.status == 0 else { return (result.status, [], result.stderr) }
        let rows = try JSONDecoder().decode([Row].self, from: Data(result.stdout.utf8))
        return (result.status, rows, result.stderr)
    }

    @Test func launcherTakesGeneralVariablesFromEtcdAndItsOwnEnvironmentWins() async throws {
        try await EtcdServer.with { server in
            try await EtcdClient.withClient(settings: try server.clientSettings(prefix: "/kl"), logger: Logger(label: "test")) { client in
                try await ConfigStore(client: client, logger: Logger(label: "test")).load(
                    ConfigTree(values: [.general("AUTO_ATTACH"): "no", .general("ATTACH_IFACES"): ""]))
            }
            let base = ["PATH": "/usr/bin:/bin", "ETCD_ENDPOINTS": server.endpoint.url, "ETCD_PREFIX": "/kl"]
            // Without etcd, the links that could be attached are listed as waiting for AUTO_ATTACH.
            let without = try Self.listing(["PATH": "/usr/bin:/bin"])
            #expect(without.status == 0, "\(without.stderr)")
            let eligible = Set(without.rows.filter { $0.reason == "AUTO_ATTACH not set" }.map(\.name))
            try #require(!eligible.isEmpty, "this host has no link kvm-launch could attach, so the selection cannot show: \(without.rows)")

            // AUTO_ATTACH=no and an empty ATTACH_IFACES from etcd: nothing attached, exactly those links
            // "not in ATTACH_IFACES", every other row keeps its reason.
            let fromEtcd = try Self.listing(base)
            #expect(fromEtcd.status == 0, "\(fromEtcd.stderr)")
            #expect(fromEtcd.rows.count == without.rows.count, "\(fromEtcd.rows)")
            #expect(!fromEtcd.rows.contains { $0.attach })
            #expect(Set(fromEtcd.rows.filter { $0.reason == "not in ATTACH_IFACES" }.map(\.name)) == eligible, "\(fromEtcd.rows)")
            #expect(!fromEtcd.rows.contains { $0.reason == "AUTO_ATTACH not set" })
            #expect(fromEtcd.rows.contains { $0.reason == "loopback" })
            #expect(fromEtcd.stderr.contains("settings from etcd general/: added ATTACH_IFACES,AUTO_ATTACH"), "\(fromEtcd.stderr)")

            // The container's own AUTO_ATTACH wins over etcd's: a bad value there is reported, not etcd's.
            let overridden = try run([Self.binary, "--list-ifaces", "--json"], environment: base.merging(["AUTO_ATTACH": "bogus"]) { $1 }, check: false)
            #expect(overridden.status != 0)
            #expect(overridden.stderr.contains("AUTO_ATTACH=\"bogus\""), "\(overridden.stderr)")
        }
    }

    @Test func unreachableEtcdIsOneLineNamingTheEndpoint() throws {
        let dead = "http://127.0.0.1:\(try freePort())"
        let result = try run([Self.binary, "--list-ifaces"], environment: ["PATH": "/usr/bin:/bin", "ETCD_ENDPOINTS": dead, "ETCD_TIMEOUT": "1"], check: false)
        #expect(result.status != 0)
        let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
        #expect(errors.count == 1, "\(result.stderr)")
        #expect(errors.first?.contains(dead) == true)
    }
}
