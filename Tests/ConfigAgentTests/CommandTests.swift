import ArgumentParser
import Foundation
import TestSupport
import Testing

@testable import ConfigAgent

/// `kvm-launch config …` parsed and run in-process against a real etcd.
@Suite("config command")
struct CommandTests {
    private func etcdArguments(_ server: EtcdServer, prefix: String) -> [String] {
        ["--endpoints", server.endpoint.url, "--prefix", prefix]
    }

    @Test("load, env, render: the operator workflow on the reference set")
    func workflow() async throws {
        try await EtcdServer.with { server in
            let etcd = etcdArguments(server, prefix: "/cli")
            let temporary = try TemporaryDirectory()
            defer { temporary.remove() }
            let directory = temporary.path

            // Strict loading refuses the reference set (three lines outside the model) and writes nothing.
            let refused = await #expect(throws: ConfigTree.InputErrors.self) {
                try await runConfigCommand(["load"] + etcd + [fixture("reference")])
            }
            #expect(refused?.errors.count == 3)
            let empty = try await runConfigCommand(["env"] + etcd)
            #expect(empty.out.lines.isEmpty)

            let dryRun = try await runConfigCommand(["load", "--legacy", "--dry-run", fixture("reference")])
            #expect(dryRun.out.text.contains("valid: 361 keys"))
            // The listing hides secrets but shows the rest.
            #expect(dryRun.out.lines.contains("general/NOVA_PASSWORD=<redacted>"))
            #expect(dryRun.out.lines.contains("general/MYSQL_HOST=pxc-cluster.default.svc"))
            #expect(dryRun.out.lines.contains("compute/nova/nova.conf/libvirt/connection_uri=qemu+tcp://localhost/system"))
            #expect(!dryRun.out.text.contains("nova_password") && !dryRun.out.text.contains("v1nucl0ud"))

            let loaded = try await runConfigCommand(["load", "--legacy"] + etcd + [fixture("reference")])
            #expect(loaded.out.text.hasPrefix("loaded 361 keys"), "\(loaded.out.text)")
            #expect(loaded.err.lines.contains { $0.hasPrefix("note: ") && $0.contains("swift/rsync:1: skipped") })

            // env: export lines that bash evaluates back to etcd's values.
            let env = try await runConfigCommand(["env"] + etcd)
            #expect(env.out.lines.count == 53)
            #expect(env.out.lines.contains("export SELECTED_NETWORK='10.42.0.0/16'"))
            let json = try await runConfigCommand(["env", "--json"] + etcd)
            let decoded = try JSONDecoder().decode([String: String].self, from: Data(json.out.text.utf8))
            #expect(decoded["MYSQL_HOST"] == "pxc-cluster.default.svc")
            #expect(decoded.count == 53)

            // render: into the existing file, HOSTNAME from the environment.
            try FileManager.default.copyItem(atPath: fixture("existing/nova.conf"), toPath: directory + "/nova.conf")
            let environment = ["HOSTNAME": "compute-1.example"]
            let rendered = try await runConfigCommand(["render"] + etcd + ["compute/nova/nova.conf", "--into", directory], environment: environment)
            #expect(rendered.out.text.contains("updated"))
            #expect(try readFile(directory + "/nova.conf") == (try fixtureText("golden/compute-nova.conf")))
            let again = try await runConfigCommand(["render"] + etcd + ["compute/nova/nova.conf", "--into", directory], environment: environment)
            #expect(again.out.text.contains("unchanged"))

            // New file, default mode; --stdout prints instead.
            _ = try await runConfigCommand(["render"] + etcd + ["compute/neutron/openvswitch_agent.ini", "--into", directory], environment: environment)
            #expect(try readFile(directory + "/openvswitch_agent.ini") == (try fixtureText("golden/compute-openvswitch_agent.ini")))
            let printed = try await runConfigCommand(["render"] + etcd + ["compute/neutron/openvswitch_agent.ini", "--stdout"], environment: environment)
            #expect(printed.out.text + "\n" == (try fixtureText("golden/compute-openvswitch_agent.ini")))
        }
    }

    @Test("env output survives bash with quotes, spaces, dollars and backquotes")
    func envQuoting() async throws {
        try await EtcdServer.with { server in
            let etcd = etcdArguments(server, prefix: "/q")
            let temporary = try TemporaryDirectory()
            defer { temporary.remove() }
            let directory = temporary.path
            let values = [
                "QUOTES": #"it's a "test""#,
                "SPACES": "  a  b\tc ",
                "DOLLARS": "$HOME ${USER} $(id) `id` $$ $",
                "EQUALS": "key=value==",
                "UNICODE": "ñandú ☃",
            ]
            // Trailing blanks are trimmed by the loader (and said so); keep them out of the comparison.
            let lines = values.keys.sorted().map { "general/\($0)=\(values[$0]!)" }.joined(separator: "\n")
            try writeFile(directory + "/general.conf", lines + "\n")
            let loaded = try await runConfigCommand(["load"] + etcd + [directory])
            #expect(loaded.err.lines.contains { $0.contains("trailing spaces/tabs trimmed") && $0.contains("general/SPACES") })

            let env = try await runConfigCommand(["env"] + etcd)
            let names = values.keys.sorted()
            let printer = names.map { "printf '%s\\0' \"$\($0)\"" }.joined(separator: "; ")
            let bash = try run(["/bin/bash", "-c", "eval \"$(cat)\"; \(printer)"], environment: ["PATH": "/usr/bin:/bin"], input: env.out.text, check: false)
            #expect(bash.status == 0, "\(bash.stderr)")
            let got = bash.stdout.split(separator: "\0", omittingEmptySubsequences: false).dropLast().map(String.init)
            var expected = values
            expected["SPACES"] = "  a  b\tc"
            #expect(got == names.map { expected[$0]! })
        }
    }

    @Test("render: an unknown variable is an error naming it, and the file is left alone")
    func unknownVariable() async throws {
        try await EtcdServer.with { server in
            let etcd = etcdArguments(server, prefix: "/u")
            let temporary = try TemporaryDirectory()
            defer { temporary.remove() }
            let directory = temporary.path
            _ = try await runConfigCommand(["load", "--legacy"] + etcd + [fixture("reference/nova"), fixture("reference/general")])
            try FileManager.default.copyItem(atPath: fixture("existing/nova.conf"), toPath: directory + "/nova.conf")
            let before = try readFile(directory + "/nova.conf")

            let error = await #expect(throws: RenderError.self) {
                try await runConfigCommand(["render", "--ignore-environment"] + etcd + ["compute/nova/nova.conf", "--into", directory], environment: ["HOSTNAME": "x"])
            }
            #expect(error.map { "\($0)".contains("unknown variable $HOSTNAME") } == true)
            #expect(try readFile(directory + "/nova.conf") == before)

            _ = try await runConfigCommand(["render", "--ignore-environment", "--allow-unknown-variables"] + etcd + ["compute/nova/nova.conf", "--into", directory])
            #expect(INIDocument(try readFile(directory + "/nova.conf")).value(section: "DEFAULT", key: "my_ip") == "$HOSTNAME")
        }
    }

    @Test("load: one bad line anywhere and nothing is written; every bad line is listed")
    func loadRejects() async throws {
        try await EtcdServer.with { server in
            let etcd = etcdArguments(server, prefix: "/bad")
            let temporary = try TemporaryDirectory()
            defer { temporary.remove() }
            let directory = temporary.path
            try writeFile(directory + "/good/a.conf", "general/A=1\n")
            _ = try await runConfigCommand(["load"] + etcd + [directory + "/good"])

            try writeFile(directory + "/next/a.conf", "general/A=2\ngeneral/B=2\n")
            try writeFile(directory + "/next/b.conf", "# comment\ncompute/nova/nova.conf/DEFAULT/x=1\nthis line is broken\n")
            let error = await #expect(throws: ConfigTree.InputErrors.self) {
                try await runConfigCommand(["load"] + etcd + [directory + "/next"])
            }
            #expect(error?.errors.map(\.location) == [SourceLocation(file: directory + "/next/b.conf", line: 3)])
            try writeFile(directory + "/next/c.conf", "general/C=3\n=nokey\n")
            let output = OutputCollector()
            let context = CommandContext(environment: [:], out: { output.append($0) }, err: { output.append($0) })
            let load = try ConfigCommand.Load.parse(etcd + [directory + "/next"])
            await #expect(throws: ConfigTree.InputErrors.self) { try await CommandContext.$current.withValue(context) { try await load.run() } }
            #expect(output.lines == ["error: \(directory)/next/b.conf:3: no '=' in line; write KEY=VALUE, or start the line with '#' for a comment", "error: \(directory)/next/c.conf:2: empty key before '='"])
            let env = try await runConfigCommand(["env"] + etcd)
            #expect(env.out.lines == ["export A='1'"])
        }
    }

    @Test("watch runs in-process until cancelled and reports what it rendered")
    func watch() async throws {
        try await EtcdServer.with { server in
            let etcd = etcdArguments(server, prefix: "/cw")
            let temporary = try TemporaryDirectory()
            defer { temporary.remove() }
            let directory = temporary.path
            try writeFile(directory + "/in/a.conf", "general/REGION=r1\ncompute/nova/nova.conf/DEFAULT/region_name=$REGION\n")
            _ = try await runConfigCommand(["load"] + etcd + [directory + "/in"])
            try FileManager.default.createDirectory(atPath: directory + "/out", withIntermediateDirectories: true)
            let task = Task {
                try await runConfigCommand(["watch"] + etcd + ["compute/nova/nova.conf=\(directory)/out", "--reload", "touch", directory + "/reloaded"])
            }
            defer { task.cancel() }
            #expect(await eventually { FileManager.default.fileExists(atPath: directory + "/reloaded") })
            #expect(try readFile(directory + "/out/nova.conf") == "[DEFAULT]\nregion_name = r1\n")
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
        }
    }

    @Test("argument and settings errors are reported before anything runs")
    func usageErrors() async throws {
        #expect(throws: (any Error).self) { try ConfigCommand.parseAsRoot(["render", "compute/nova/nova.conf"]) }
        #expect(throws: (any Error).self) { try ConfigCommand.parseAsRoot(["watch", "compute/nova/nova.conf"]) }
        #expect(throws: (any Error).self) { try ConfigCommand.parseAsRoot(["watch", "--into", "/tmp", "nova.conf"]) }
        let noEtcd = await #expect(throws: EtcdSettingsError.self) { try await runConfigCommand(["env"], environment: [:]) }
        #expect(noEtcd == .noEndpoints)
        let badEndpoint = await #expect(throws: EtcdSettingsError.self) {
            try await runConfigCommand(["env"], environment: ["ETCD_ENDPOINTS": "etcd:2379"])
        }
        #expect(badEndpoint == .badEndpoint("etcd:2379"))
        #expect(ConfigCommand.helpMessage(for: ConfigCommand.Watch.self).contains("reload"))
    }
}
