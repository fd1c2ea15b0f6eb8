import Foundation
import Logging
import Testing
@testable import ConfigAgent

/// The `kvm-launch` binary itself takes its settings from etcd's `general/` when ETCD_ENDPOINTS is
/// set, before it decides anything; its own environment wins. `--list-ifaces --json` shows the
/// effect without changing anything.
@Suite(.serialized)
struct LauncherFromEtcdTests {
    static var binary: String {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("kvm-launch").path
    }

    static func reasons(_ environment: [String: String]) throws -> (status: Int32, reasons: Set<String>, stderr: String) {
        let result = try runProgram(binary, ["--list-ifaces", "--json"], environment: environment)
        let rows = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]) ?? []
        return (result.status, Set(rows.compactMap { $0["reason"] as? String }), result.stderr)
    }

    @Test func launcherTakesGeneralVariablesFromEtcdAndItsOwnEnvironmentWins() async throws {
        try await EtcdServer.with { server in
            try await EtcdClient.withClient(settings: try server.clientSettings(prefix: "/kl"), logger: Logger(label: "test")) { client in
                try await ConfigStore(client: client, logger: Logger(label: "test")).load(
                    ConfigTree(values: [.general("AUTO_ATTACH"): "no", .general("ATTACH_IFACES"): ""]))
            }
            let base = ["PATH": "/usr/bin:/bin", "ETCD_ENDPOINTS": server.endpoint.url, "ETCD_PREFIX": "/kl"]
            // AUTO_ATTACH=no from etcd: nothing is listed as attached, and non-loopback links are "not in ATTACH_IFACES".
            let fromEtcd = try Self.reasons(base)
            #expect(fromEtcd.status == 0, "\(fromEtcd.stderr)")
            #expect(fromEtcd.reasons.contains("loopback"))
            #expect(!fromEtcd.reasons.contains("AUTO_ATTACH not set"))
            // Without etcd the same listing says AUTO_ATTACH is missing.
            let without = try Self.reasons(["PATH": "/usr/bin:/bin"])
            #expect(without.reasons.contains("AUTO_ATTACH not set"))
            // The container's own AUTO_ATTACH wins over etcd's: a bad value there is reported, not etcd's.
            let overridden = try Self.reasons(base.merging(["AUTO_ATTACH": "bogus"]) { $1 })
            #expect(overridden.status != 0)
            #expect(overridden.stderr.contains("AUTO_ATTACH=\"bogus\""))
        }
    }

    @Test func unreachableEtcdIsOneLineNamingTheEndpoint() throws {
        let dead = "http://127.0.0.1:\(try freePort())"
        let result = try runProgram(Self.binary, ["--list-ifaces"], environment: ["PATH": "/usr/bin:/bin", "ETCD_ENDPOINTS": dead, "ETCD_TIMEOUT": "1"])
        #expect(result.status != 0)
        let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
        #expect(errors.count == 1, "\(result.stderr)")
        #expect(errors.first?.contains(dead) == true)
    }
}
