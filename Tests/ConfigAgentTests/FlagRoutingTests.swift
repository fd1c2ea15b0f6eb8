import Foundation
import Synchronization
import TestSupport
import Testing

@testable import ConfigAgent

#if canImport(Glibc)
import Glibc
#endif

/// Every flag of every `kvm-launch config` subcommand reaches that subcommand when given to the
/// shipped `kvm-launch` binary (which hands `config …` to `kvm-launch-config`), checked by what the
/// flag does. The launcher's own `--dry-run` and `--json` once swallowed the subcommands' flags of the
/// same name: `config load --dry-run` wrote to etcd and `config env --json` printed export lines.
@Suite("config flags reach their subcommand", .serialized)
struct FlagRoutingTests {
    static var launcher: String { LauncherFromEtcdTests.binary }

    /// Runs the binary, killed after 60 s (coreutils `timeout`, exit 124) so that a regression that
    /// hangs (an old build retried a 0 s `--timeout` forever) fails the test instead of stalling it.
    static func kvmLaunch(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        try bounded(launcher, arguments, environment: ["PATH": "/usr/bin:/bin"].merging(environment) { $1 })
    }

    /// An address nothing listens on: a subcommand that got this far without an error would fail to connect.
    static let deadEndpoint = "http://127.0.0.1:9"

    /// A flag common to every subcommand (the etcd connection), given a value whose effect shows
    /// without an etcd: each case says what the subcommand reports only if it got the flag.
    struct EtcdFlagCase: CustomTestStringConvertible, Sendable {
        var flag: [String]
        var environment: [String: String]
        var expected: String
        var testDescription: String { flag.joined(separator: " ") }
    }

    static let etcdFlagCases: [EtcdFlagCase] = [
        // No ETCD_ENDPOINTS in the environment: only the flag names this endpoint.
        EtcdFlagCase(flag: ["--endpoints", "etcd-without-scheme:2379"], environment: [:], expected: "etcd endpoint 'etcd-without-scheme:2379' is not"),
        EtcdFlagCase(flag: ["--prefix", "no-leading-slash"], environment: ["ETCD_ENDPOINTS": deadEndpoint], expected: "etcd prefix 'no-leading-slash' must start"),
        EtcdFlagCase(flag: ["--cacert", "/nonexistent/cfgagent-ca.pem"], environment: ["ETCD_ENDPOINTS": deadEndpoint], expected: "cannot use TLS file /nonexistent/cfgagent-ca.pem"),
        EtcdFlagCase(flag: ["--cert", "/nonexistent/cfgagent.crt"], environment: ["ETCD_ENDPOINTS": deadEndpoint], expected: "needs its key"),
        EtcdFlagCase(flag: ["--key", "/nonexistent/cfgagent.key"], environment: ["ETCD_ENDPOINTS": deadEndpoint], expected: "needs its key"),
        // ETCD_PASSWORD without a user is refused; with --user the next check (a bad ETCD_MAX_TXN_OPS) speaks.
        EtcdFlagCase(
            flag: ["--user", "operator"],
            environment: ["ETCD_ENDPOINTS": deadEndpoint, "ETCD_PASSWORD": "cfgagent-pw-zq7", "ETCD_MAX_TXN_OPS": "many"],
            expected: "ETCD_MAX_TXN_OPS='many' is not a usable number"),
        EtcdFlagCase(flag: ["--timeout", "1e-300"], environment: ["ETCD_ENDPOINTS": deadEndpoint], expected: "is outside 0.1 to 3600 seconds"),
        EtcdFlagCase(flag: ["--max-txn-ops", "2"], environment: ["ETCD_ENDPOINTS": deadEndpoint], expected: "ETCD_MAX_TXN_OPS='2' is not a usable number"),
    ]

    /// The rest of each subcommand's command line, valid apart from the etcd flag under test.
    static func subcommandArguments(_ subcommand: String, directory: String) -> [String] {
        switch subcommand {
        case "load": [directory + "/in"]
        case "render": ["--into", directory, "compute/x/x.conf"]
        case "watch": ["--into", directory, "compute/x/x.conf"]
        default: []
        }
    }

    @Test("etcd flags reach every subcommand", arguments: ["load", "env", "render", "watch"], etcdFlagCases)
    func etcdFlag(subcommand: String, flagCase: EtcdFlagCase) async throws {
        try await withTemporaryDirectory { directory in
            try writeFile(directory + "/in/a.conf", "general/A=1\n")
            let result = try Self.kvmLaunch(
                ["config", subcommand] + flagCase.flag + Self.subcommandArguments(subcommand, directory: directory),
                environment: flagCase.environment)
            #expect(result.status != 0, "\(result.stdout)")
            #expect(result.stderr.contains(flagCase.expected), "\(result.stderr)")
            #expect(!result.stderr.contains("cfgagent-pw-zq7"), "the password leaked: \(result.stderr)")
        }
    }

    // MARK: - load

    @Test("load --dry-run validates offline: no etcd at all, nothing written")
    func loadDryRunWithoutEtcd() async throws {
        try await withTemporaryDirectory { directory in
            try writeFile(directory + "/in/a.conf", "general/A=1\ngeneral/DB_PASSWORD=hush\n")
            let result = try Self.kvmLaunch(["config", "load", "--dry-run", directory + "/in"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("general/A=1"))
            #expect(result.stdout.contains("general/DB_PASSWORD=<redacted>") && !result.stdout.contains("hush"))
            #expect(result.stdout.contains("valid: 2 keys") && result.stdout.contains("nothing written (--dry-run)"), "\(result.stdout)")
            // Still a validation: a bad line fails it.
            try writeFile(directory + "/in/b.conf", "broken line\n")
            let bad = try Self.kvmLaunch(["config", "load", "--dry-run", directory + "/in"])
            #expect(bad.status != 0)
            #expect(bad.stderr.contains("b.conf:1: no '=' in line"), "\(bad.stderr)")
        }
    }

    @Test("load --dry-run with a real etcd named writes nothing there, not even removals")
    func loadDryRunWithEtcd() async throws {
        try await EtcdServer.with { server in
            try await withTemporaryDirectory { directory in
                try writeFile(directory + "/old/a.conf", "general/OLD=1\n")
                try writeFile(directory + "/new/a.conf", "general/NEW=2\n")
                let environment = ["ETCD_ENDPOINTS": server.endpoint.url, "ETCD_PREFIX": "/cfgagent-dry"]
                let loaded = try Self.kvmLaunch(["config", "load", directory + "/old"], environment: environment)
                #expect(loaded.status == 0, "\(loaded.stderr)")
                let before = try server.etcdctl(["get", "--prefix", "/cfgagent-dry/"]).stdout
                #expect(before.contains("/cfgagent-dry/general/OLD"))

                let dry = try Self.kvmLaunch(["config", "load", "--dry-run", directory + "/new"], environment: environment)
                #expect(dry.status == 0, "\(dry.stderr)")
                #expect(dry.stdout.contains("would replace the tree under /cfgagent-dry at \(server.endpoint.url)"), "\(dry.stdout)")
                #expect(!dry.stdout.contains("loaded"), "\(dry.stdout)")
                // OLD is still there, NEW was not put.
                #expect(try server.etcdctl(["get", "--prefix", "/cfgagent-dry/"]).stdout == before)
            }
        }
    }

    @Test("load --percent-decode, --skip-invalid-lines and --legacy reach load")
    func loadParsingFlags() async throws {
        try await withTemporaryDirectory { directory in
            try writeFile(directory + "/escaped/a.conf", "general/URI=qemu%2Btcp://h/system\n")
            try writeFile(directory + "/invalid/a.conf", "general/A=1\nnot a key value line\n")
            try writeFile(directory + "/legacy/a.conf", "general/URI=qemu%2Btcp://h/system\nnot a key value line\n")

            let kept = try Self.kvmLaunch(["config", "load", "--dry-run", directory + "/escaped"])
            #expect(kept.stdout.contains("general/URI=qemu%2Btcp://h/system"), "\(kept.stdout)")
            let decoded = try Self.kvmLaunch(["config", "load", "--dry-run", "--percent-decode", directory + "/escaped"])
            #expect(decoded.status == 0, "\(decoded.stderr)")
            #expect(decoded.stdout.contains("general/URI=qemu+tcp://h/system"), "--percent-decode: \(decoded.stdout)")

            let strict = try Self.kvmLaunch(["config", "load", "--dry-run", directory + "/invalid"])
            #expect(strict.status != 0)
            let skipped = try Self.kvmLaunch(["config", "load", "--dry-run", "--skip-invalid-lines", directory + "/invalid"])
            #expect(skipped.status == 0, "--skip-invalid-lines: \(skipped.stderr)")
            #expect(skipped.stderr.contains("a.conf:2: skipped"), "\(skipped.stderr)")

            let legacy = try Self.kvmLaunch(["config", "load", "--dry-run", "--legacy", directory + "/legacy"])
            #expect(legacy.status == 0, "--legacy: \(legacy.stderr)")
            #expect(legacy.stdout.contains("general/URI=qemu+tcp://h/system") && legacy.stderr.contains("skipped"), "\(legacy.stdout)\(legacy.stderr)")
        }
    }

    @Test("load --endpoints and --prefix write to that etcd under that prefix")
    func loadEndpointsAndPrefix() async throws {
        try await EtcdServer.with { server in
            try await withTemporaryDirectory { directory in
                try writeFile(directory + "/in/a.conf", "general/A=1\n")
                let result = try Self.kvmLaunch(["config", "load", "--endpoints", server.endpoint.url, "--prefix", "/cfgagent-flags", directory + "/in"])
                #expect(result.status == 0, "\(result.stderr)")
                #expect(result.stdout.hasPrefix("loaded 1 keys"), "\(result.stdout)")
                #expect(try server.etcdctl(["get", "--print-value-only", "/cfgagent-flags/general/A"]).stdout == "1\n")
            }
        }
    }

    // MARK: - env, render, watch against a real etcd

    @Test("env --json prints JSON, and render/watch flags do what they say")
    func envRenderWatch() async throws {
        try await EtcdServer.with { server in
            try await withTemporaryDirectory { directory in
                try writeFile(directory + "/in/a.conf",
                    """
                    general/REGION=r1
                    compute/x/x.conf/s/region=$REGION
                    compute/x/x.conf/s/from_environment=$CFGAGENT_FROM_ENV
                    compute/x/x.conf/s/unknown=$CFGAGENT_NOWHERE

                    """)
                let environment = ["ETCD_ENDPOINTS": server.endpoint.url, "ETCD_PREFIX": "/cfgagent-erw", "CFGAGENT_FROM_ENV": "env-value"]
                let loaded = try Self.kvmLaunch(["config", "load", directory + "/in"], environment: environment)
                #expect(loaded.status == 0, "\(loaded.stderr)")

                // env: export lines by default, JSON with --json.
                let shell = try Self.kvmLaunch(["config", "env"], environment: environment)
                #expect(shell.stdout == "export REGION='r1'\n", "\(shell.stdout)")
                let json = try Self.kvmLaunch(["config", "env", "--json"], environment: environment)
                #expect(json.status == 0, "\(json.stderr)")
                let decoded = try JSONDecoder().decode([String: String].self, from: Data(json.stdout.utf8))
                #expect(decoded == ["REGION": "r1"], "--json: \(json.stdout)")

                // render: an unknown variable fails; --allow-unknown-variables keeps it as written.
                let out = directory + "/out"
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                let refused = try Self.kvmLaunch(["config", "render", "--into", out, "compute/x/x.conf"], environment: environment)
                #expect(refused.status != 0 && refused.stderr.contains("$CFGAGENT_NOWHERE"), "\(refused.stderr)")
                #expect(!FileManager.default.fileExists(atPath: out + "/x.conf"))
                let lenient = try Self.kvmLaunch(
                    ["config", "render", "--allow-unknown-variables", "--into", out, "compute/x/x.conf"], environment: environment)
                #expect(lenient.status == 0, "--allow-unknown-variables: \(lenient.stderr)")
                let rendered = INIDocument(try readFile(out + "/x.conf"))
                #expect(rendered.value(section: "s", key: "unknown") == "$CFGAGENT_NOWHERE")
                #expect(rendered.value(section: "s", key: "from_environment") == "env-value")
                #expect(rendered.value(section: "s", key: "region") == "r1")
                // --ignore-environment: CFGAGENT_FROM_ENV is not taken from the environment.
                let ignoring = try Self.kvmLaunch(
                    ["config", "render", "--ignore-environment", "--allow-unknown-variables", "--stdout", "compute/x/x.conf"],
                    environment: environment)
                #expect(ignoring.status == 0, "\(ignoring.stderr)")
                #expect(INIDocument(ignoring.stdout).value(section: "s", key: "from_environment") == "$CFGAGENT_FROM_ENV", "--ignore-environment: \(ignoring.stdout)")
                // --stdout printed instead of writing: the file on disk still has the environment's value.
                #expect(INIDocument(try readFile(out + "/x.conf")).value(section: "s", key: "from_environment") == "env-value", "--stdout wrote the file")

                // watch: --into, --ignore-environment, --allow-unknown-variables and --reload, all at once.
                let watched = directory + "/watched"
                try FileManager.default.createDirectory(atPath: watched, withIntermediateDirectories: true)
                let marker = directory + "/reloaded"
                let watch = try WatchProcess.start(
                    Self.launcher,
                    ["config", "watch", "--ignore-environment", "--allow-unknown-variables", "--into", watched, "compute/x/x.conf",
                     "--reload", "/usr/bin/touch", marker],
                    environment: ["PATH": "/usr/bin:/bin"].merging(environment) { $1 })
                defer { watch.stop() }
                let reloaded = await eventually(within: 30) { FileManager.default.fileExists(atPath: marker) }
                if !reloaded { Issue.record("--reload never ran; watch printed: \(watch.stop())") }
                let kept = INIDocument(try readFile(watched + "/x.conf"))
                #expect(kept.value(section: "s", key: "from_environment") == "$CFGAGENT_FROM_ENV", "--ignore-environment")
                #expect(kept.value(section: "s", key: "unknown") == "$CFGAGENT_NOWHERE", "--allow-unknown-variables")
            }
        }
    }

    @Test("--help after a subcommand is that subcommand's help")
    func subcommandHelp() throws {
        let load = try Self.kvmLaunch(["config", "load", "--help"])
        #expect(load.status == 0)
        #expect(load.stdout.contains("--percent-decode") && load.stdout.contains("--dry-run"), "\(load.stdout)")
        let env = try Self.kvmLaunch(["config", "env", "--help"])
        #expect(env.stdout.contains("--json") && !env.stdout.contains("--list-ifaces"), "\(env.stdout)")
        let top = try Self.kvmLaunch(["--help"])
        #expect(top.stdout.contains("config"), "\(top.stdout)")
    }
}

/// The program's result; one still running after `seconds` is killed and the test fails.
func bounded(_ executable: String, _ arguments: [String], environment: [String: String], seconds: Int = 60) throws -> ProcessResult {
    try run([executable] + arguments, environment: environment, check: false, timeout: TimeInterval(seconds))
}

/// A `kvm-launch config watch` (or any long-running program) with its output collected; ``stop()``
/// ends it (SIGTERM, then SIGKILL) and returns what it printed.
final class WatchProcess {
    private let process: Process
    private let output: OutputCollector

    private init(process: Process, output: OutputCollector) {
        self.process = process
        self.output = output
    }

    static func start(_ executable: String, _ arguments: [String], environment: [String: String]) throws -> WatchProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let output = OutputCollector()
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if !data.isEmpty { output.append(String(decoding: data, as: UTF8.self)) }
        }
        try process.run()
        return WatchProcess(process: process, output: output)
    }

    @discardableResult
    func stop() -> String {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            for _ in 0..<100 where process.isRunning { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        return output.text
    }
}
