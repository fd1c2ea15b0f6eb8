import Foundation
import Logging
import Testing

@testable import ConfigAgent

/// Issue 14 item 1: per-role entries in etcd. `ROLE/NAME` is a variable of one role that wins over
/// `general/NAME` for a launcher with `ETCD_ROLE=ROLE` (the container's own environment still wins
/// over both), e.g. `compute/CLOUD_INIT_USER_DATA` and `compute/SSH_AUTHORIZED_KEYS`.
@Suite(.serialized)
struct RoleVariableTests {
    static let generalUserData = "#cloud-config\nhostname: any-role\n"
    static let computeUserData = "#cloud-config\nhostname: a-compute-node-of-this-deployment\npackages: [nova-compute-kvm]\n"
    static let controllerUserData = "#cloud-config\nhostname: ctl\n"
    static let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJx0test0key0material0only0for0tests0000 ops@example"

    static var tree: ConfigTree {
        ConfigTree(values: [
            .general("CLOUD_INIT_USER_DATA"): generalUserData,
            .general("SSH_AUTHORIZED_KEYS"): key,
            .general("AUTO_ATTACH"): "yes",
            .roleVariable(.compute, "CLOUD_INIT_USER_DATA"): computeUserData,
            .roleVariable(.compute, "AUTO_ATTACH"): "no",
            .roleVariable(.compute, "ATTACH_IFACES"): "",
            .roleVariable(.controller, "CLOUD_INIT_USER_DATA"): controllerUserData,
            try! ConfigKey(path: "compute/nova/nova.conf/DEFAULT/my_ip"): "10.0.0.5",
        ])
    }

    @Test func roleVariableKeysParseAndPrintBack() throws {
        #expect(try ConfigKey(path: "compute/CLOUD_INIT_USER_DATA") == .roleVariable(.compute, "CLOUD_INIT_USER_DATA"))
        #expect(ConfigKey.roleVariable(.controller, "SSH_AUTHORIZED_KEYS").path == "controller/SSH_AUTHORIZED_KEYS")
        #expect(throws: ConfigKeyError.badRoleVariableName("compute/1BAD")) { try ConfigKey(path: "compute/1BAD") }
        #expect(throws: ConfigKeyError.badRoleVariableName("compute/")) { try ConfigKey(path: "compute/") }
        #expect(throws: ConfigKeyError.badRoleVariableName("compute/nova")) { try ConfigKey(path: "compute/nova") }
        #expect(throws: ConfigKeyError.badSettingShape("compute/nova/nova.conf")) { try ConfigKey(path: "compute/nova/nova.conf") }
        #expect(throws: ConfigKeyError.outsideTree("network/X")) { try ConfigKey(path: "network/X") }
        let tree = Self.tree
        #expect(tree.environment(role: .compute)["CLOUD_INIT_USER_DATA"] == Self.computeUserData)
        #expect(tree.environment(role: .compute)["SSH_AUTHORIZED_KEYS"] == Self.key, "general/ fills in what the role lacks")
        #expect(tree.environment(role: nil) == tree.general)
        #expect(tree.environment(role: .compute)["my_ip"] == nil, "INI settings are no variables")
        #expect(tree.counts.total == 8)
        #expect(tree.counts.description.contains("compute: 1 settings in 1 files and 3 variables"), "\(tree.counts)")
        #expect(throws: ConfigRoleError(value: "storage")) { try ConfigRole.named("storage") }
        #expect(try ConfigRole.named(" ") == nil && ConfigRole.named("compute") == .compute)
    }

    @Test func aLoadedTreeGivesEachRoleItsOwnUserDataFromARealEtcd() async throws {
        try await EtcdServer.with { server in
            try await EtcdClient.withClient(settings: try server.clientSettings(prefix: "/kl-role"), logger: quietLogger) { client in
                let store = try ConfigStore(client: client, logger: quietLogger)
                try await store.load(Self.tree)
                #expect(try await store.read().tree == Self.tree, "role variables survive a load and a read")
            }
            let base = ["ETCD_ENDPOINTS": server.endpoint.url, "ETCD_PREFIX": "/kl-role"]
            let compute = try await launcherEnvironment(container: base.merging(["ETCD_ROLE": "compute"]) { $1 }, logger: quietLogger)
            #expect(compute["CLOUD_INIT_USER_DATA"] == Self.computeUserData, "the role's entry wins over general/")
            #expect(compute["SSH_AUTHORIZED_KEYS"] == Self.key)
            #expect(compute["AUTO_ATTACH"] == "no" && compute["my_ip"] == nil)
            let controller = try await launcherEnvironment(container: base.merging(["ETCD_ROLE": "controller"]) { $1 }, logger: quietLogger)
            #expect(controller["CLOUD_INIT_USER_DATA"] == Self.controllerUserData && controller["AUTO_ATTACH"] == "yes")
            let noRole = try await launcherEnvironment(container: base, logger: quietLogger)
            #expect(noRole["CLOUD_INIT_USER_DATA"] == Self.generalUserData, "without ETCD_ROLE only general/")
            let own = try await launcherEnvironment(container: base.merging(["ETCD_ROLE": "compute", "CLOUD_INIT_USER_DATA": "/data/mine.yaml"]) { $1 },
                                                    logger: quietLogger)
            #expect(own["CLOUD_INIT_USER_DATA"] == "/data/mine.yaml", "the container's own value wins over both")
            await #expect(throws: ConfigRoleError(value: "storage")) {
                try await launcherEnvironment(container: base.merging(["ETCD_ROLE": "storage"]) { $1 }, logger: quietLogger)
            }

            // `config env --json`: ETCD_ROLE from the environment, --role wins over it.
            let environment = base.merging(["PATH": "/usr/bin:/bin", "ETCD_ROLE": "compute"]) { $1 }
            let json = try await runConfigCommand(["env", "--json"], environment: environment).out.text
            let decoded = try JSONDecoder().decode([String: String].self, from: Data(json.utf8))
            #expect(decoded["CLOUD_INIT_USER_DATA"] == Self.computeUserData)
            let flagged = try await runConfigCommand(["env", "--json", "--role", "controller"], environment: environment).out.text
            #expect(try JSONDecoder().decode([String: String].self, from: Data(flagged.utf8))["CLOUD_INIT_USER_DATA"] == Self.controllerUserData)
        }
    }

    /// Through the real `kvm-launch` binary: `--dry-run` with `CLOUD_INIT=yes` and no interface shows
    /// the seed's user data size, which tells which entry it took.
    @Test func theLauncherSeedsTheRolesUserData() async throws {
        try await EtcdServer.with { server in
            try await EtcdClient.withClient(settings: try server.clientSettings(prefix: "/kl-role"), logger: quietLogger) { client in
                try await ConfigStore(client: client, logger: quietLogger).load(Self.tree)
            }
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kl-role-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let disk = directory.appendingPathComponent("disk.raw").path
            FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20))
            let base = ["PATH": "/usr/bin:/bin", "ETCD_ENDPOINTS": server.endpoint.url, "ETCD_PREFIX": "/kl-role",
                        "VM_IMAGE": disk, "VM_ACCEL": "tcg", "CLOUD_INIT": "yes", "VM_HOSTNAME": "role-test",
                        // No interface of this (the host's) namespace is planned.
                        "AUTO_ATTACH": "no", "ATTACH_IFACES": "",
                        "KVM_LAUNCH_RUN_DIR": directory.appendingPathComponent("run").path]
            func userDataLine(_ extra: [String: String]) throws -> String {
                let result = try runProgram(LauncherFromEtcdTests.binary, ["--dry-run"], environment: base.merging(extra) { $1 })
                #expect(result.status == 0, "\(result.stderr)")
                return result.stdout.split(separator: "\n").first { $0.contains("user-data:") }.map(String.init) ?? "no user-data line in: \(result.stdout)"
            }
            // The rendered user data: the text with the key merged in; its size tells which text it was.
            let compute = try userDataLine(["ETCD_ROLE": "compute"])
            let general = try userDataLine([:])
            #expect(compute != general, "\(compute) / \(general)")
            #expect(compute.contains("1 SSH key(s)") && general.contains("1 SSH key(s)"), "the key from general/ in both: \(compute)")
            #expect(!compute.contains("nova-compute-kvm"), "user data is never printed: \(compute)")
            let bytes = { (line: String) in Int(line.split(separator: " ").first { Int($0) != nil } ?? "") ?? -1 }
            #expect(bytes(compute) > bytes(general), "the compute entry is the longer text: \(compute) / \(general)")
        }
    }
}
