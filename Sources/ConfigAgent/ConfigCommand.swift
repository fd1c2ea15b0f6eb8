import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Logging

/// `kvm-launch config …` (the `kvm-launch-config` executable): load, env, render and watch the
/// etcd-backed configuration.
package struct ConfigCommand: AsyncParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "kvm-launch config",
        abstract: "Load the deployment's key=value configuration into etcd and render it into services' files.",
        discussion: """
            etcd is chosen with --endpoints or ETCD_ENDPOINTS; see the options of each subcommand.
            The etcd password is read from ETCD_PASSWORD only (never from the command line).
            """,
        subcommands: [Load.self, Env.self, Render.self, Watch.self, UserData.self]
    )

    package init() {}
}

/// Where commands read their environment and write their output; tests replace it.
struct CommandContext: Sendable {
    var environment: [String: String]
    var out: @Sendable (String) -> Void
    var err: @Sendable (String) -> Void

    @TaskLocal static var current = CommandContext(
        environment: ProcessInfo.processInfo.environment,
        out: { print($0) },
        err: { line in StandardError.write(line + "\n") }
    )
}

/// Options naming the etcd cluster; each falls back to its environment variable.
struct EtcdOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Comma-separated etcd URLs (env ETCD_ENDPOINTS).", valueName: "urls"))
    var endpoints: String?

    @Option(help: ArgumentHelp("Tree root in etcd (env ETCD_PREFIX, default /openstack-k8s).", valueName: "prefix"))
    var prefix: String?

    @Option(help: ArgumentHelp("CA certificate, PEM (env ETCD_CACERT).", valueName: "file"))
    var cacert: String?

    @Option(help: ArgumentHelp("Client certificate, PEM (env ETCD_CERT).", valueName: "file"))
    var cert: String?

    @Option(help: ArgumentHelp("Client certificate key, PEM (env ETCD_KEY).", valueName: "file"))
    var key: String?

    @Option(help: ArgumentHelp("etcd user (env ETCD_USER; password from ETCD_PASSWORD).", valueName: "name"))
    var user: String?

    @Option(help: ArgumentHelp("Seconds per request (env ETCD_TIMEOUT, default 10).", valueName: "seconds"))
    var timeout: Double?

    @Option(help: ArgumentHelp("The server's --max-txn-ops (env ETCD_MAX_TXN_OPS, default 128).", valueName: "n"))
    var maxTxnOps: Int?

    /// Flags override the environment.
    func settings(_ environment: [String: String]) throws -> EtcdSettings {
        guard let settings = try settingsIfGiven(environment) else { throw EtcdSettingsError.noEndpoints }
        return settings
    }

    /// The settings, checked but not used, or nil when no endpoint is given (flag or environment).
    func settingsIfGiven(_ environment: [String: String]) throws -> EtcdSettings? {
        var merged = environment
        let flags: [(String, String?)] = [
            ("ETCD_ENDPOINTS", endpoints), ("ETCD_PREFIX", prefix), ("ETCD_CACERT", cacert), ("ETCD_CERT", cert),
            ("ETCD_KEY", key), ("ETCD_USER", user), ("ETCD_TIMEOUT", timeout.map { String($0) }),
            ("ETCD_MAX_TXN_OPS", maxTxnOps.map { String($0) }),
        ]
        for case (let name, let value?) in flags { merged[name] = value }
        return try EtcdSettings.fromEnvironment(merged)
    }
}

/// Options shared by render and watch.
struct RenderOptions: ParsableArguments {
    @Flag(help: "Leave $NAME references without a value as written instead of failing.")
    var allowUnknownVariables = false

    @Flag(help: "Resolve $NAME from etcd's general/ only, not from this process's environment.")
    var ignoreEnvironment = false

    func renderer(general: [String: String], environment: [String: String]) -> ConfigRenderer {
        ConfigRenderer(
            general: general,
            environment: ignoreEnvironment ? [:] : environment,
            unknownVariables: allowUnknownVariables ? .keep : .fail
        )
    }
}

extension ConfigCommand {
    struct Load: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate key=value files and replace the whole tree in etcd in one transaction.",
            discussion: """
                Every file below each DIR (hidden names skipped) is read. Lines are KEY=VALUE, split at the
                first '='; the value is kept verbatim except trailing spaces/tabs. Blank lines and lines
                starting with '#' are ignored. If any line is bad, every bad line is listed and nothing is written
                (unless --skip-invalid-lines). Readers of etcd see the old tree or the new one, never a mix.
                """
        )

        @OptionGroup var etcd: EtcdOptions

        @Flag(help: "Decode %XX escapes in values, as the old curl-based loader did (%2B becomes +).")
        var percentDecode = false

        @Flag(help: "Skip lines that do not fit (with a note) instead of refusing to load.")
        var skipInvalidLines = false

        @Flag(help: "Files written for the old curl-based loader: both --percent-decode and --skip-invalid-lines.")
        var legacy = false

        @Flag(help: "Only validate the files (and the etcd settings, if given) and print what would be loaded (secrets hidden); needs no etcd and writes nothing.")
        var dryRun = false

        @Argument(help: ArgumentHelp("Directories or files of KEY=VALUE lines.", valueName: "dir"))
        var paths: [String]

        func run() async throws {
            let context = CommandContext.current
            let options = KeyValueFile.Options(
                percentDecode: percentDecode || legacy,
                skipInvalidLines: skipInvalidLines || legacy
            )
            let tree: ConfigTree
            let notices: [ConfigNotice]
            do {
                (tree, notices) = try ConfigTree.read(paths: paths, options: options)
            } catch {
                // Every bad line, not only the first the summary names.
                for problem in error.errors { context.err("error: \(problem)") }
                throw error
            }
            for notice in notices { context.err("note: \(notice)") }
            if dryRun {
                // Offline: the etcd settings are checked when given, etcd is never contacted.
                let settings = try etcd.settingsIfGiven(context.environment)
                // What would be loaded, secrets hidden.
                for (key, value) in tree.values.sorted(by: { $0.key < $1.key }) {
                    context.out("\(key.path)=\(Redaction.display(value, name: key.name))")
                }
                let target = settings.map { settings in
                    " would replace the tree under \(settings.prefix) at \(settings.endpoints.map(\.url).joined(separator: ","));"
                } ?? ""
                context.out("valid: \(tree.counts.total) keys (\(tree.counts));\(target) nothing written (--dry-run)")
                return
            }
            let settings = try etcd.settings(context.environment)
            let report = try await EtcdClient.withClient(settings: settings) { client in
                try await ConfigStore(client: client).load(tree)
            }
            context.out(report.description)
        }
    }

    struct Env: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the general/ variables (with a role's own ROLE/NAME ones winning) as shell export lines (eval-safe) or JSON.",
            discussion: "Values are single-quoted verbatim: eval \"$(kvm-launch config env)\" sets them exactly."
        )

        @OptionGroup var etcd: EtcdOptions

        @Option(help: ArgumentHelp("Add this role's ROLE/NAME variables, which win over general/ (env ETCD_ROLE): controller or compute.", valueName: "role"))
        var role: String?

        @Flag(help: "Print a JSON object instead of export lines.")
        var json = false

        func run() async throws {
            let context = CommandContext.current
            let settings = try etcd.settings(context.environment)
            let role = try ConfigRole.named(role ?? context.environment["ETCD_ROLE"])
            let general = try await EtcdClient.withClient(settings: settings) { client in
                try await ConfigStore(client: client).readEnvironment(role: role).variables
            }
            if json {
                context.out(EnvironmentExport.json(general))
            } else {
                for line in EnvironmentExport.shellLines(general) { context.out(line) }
            }
        }
    }

    struct Render: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Merge etcd's settings for files into the existing INI files (like crudini --merge).",
            discussion: """
                FILE is ROLE/SERVICE/FILE, e.g. compute/nova/nova.conf, written to DIR/nova.conf. Existing keys are
                updated in place, comments and order kept, new keys and sections added. $NAME and ${NAME} in
                etcd's values are replaced from the container environment, then general/ ($$ is a literal $).
                Files are replaced atomically, keeping mode and owner; new files get mode 0640.
                """
        )

        @OptionGroup var etcd: EtcdOptions
        @OptionGroup var options: RenderOptions

        @Option(help: ArgumentHelp("Directory holding the files.", valueName: "dir"))
        var into: String?

        @Flag(help: "Print the rendered files instead of writing them.")
        var stdout = false

        @Argument(help: ArgumentHelp("Files to render, ROLE/SERVICE/FILE.", valueName: "file"))
        var files: [String]

        func validate() throws {
            if into == nil && !stdout { throw ValidationError("give --into DIR (or --stdout)") }
        }

        func run() async throws {
            let context = CommandContext.current
            let ids = try files.map { path throws(ConfigKeyError) in try ConfigFileID(path: path) }
            let settings = try etcd.settings(context.environment)
            let snapshot = try await EtcdClient.withClient(settings: settings) { client in
                try await ConfigStore(client: client).read()
            }
            let renderer = options.renderer(general: snapshot.tree.general, environment: context.environment)
            for id in ids {
                if stdout {
                    let existing = try into.flatMap { directory in try AtomicFile.read(directory + "/" + id.file) }
                    let text = try renderer.render(id, from: snapshot.tree, into: existing)
                    // `out` writes whole lines: drop the final line break it would double.
                    context.out(text.hasSuffix("\n") ? String(text.dropLast()) : text)
                } else if let into {
                    let outcome = try renderer.write(id, from: snapshot.tree, into: into)
                    context.out("\(id) -> \(RenderTarget(file: id, directory: into).path): \(outcome.rawValue) (revision \(snapshot.revision))")
                }
            }
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Keep rendered files current as etcd changes; optionally run a reload command.",
            discussion: """
                Each FILE is ROLE/SERVICE/FILE, rendered into --into DIR, or FILE=DIR for its own directory.
                Everything after --reload is the reload command, run (no shell) after each round that changed a
                file, e.g. --reload kill -HUP 1. Survives etcd restarts: reconnects with backoff and re-reads everything.
                """
        )

        @OptionGroup var etcd: EtcdOptions
        @OptionGroup var options: RenderOptions

        @Option(help: ArgumentHelp("Directory for files given without =DIR.", valueName: "dir"))
        var into: String?

        @Argument(help: ArgumentHelp("Files to keep rendered, ROLE/SERVICE/FILE[=DIR].", valueName: "file"))
        var files: [String]

        @Option(
            parsing: .remaining,
            help: ArgumentHelp("Reload command and its arguments; takes everything after it, so give it last.", valueName: "command")
        )
        var reload: [String] = []

        func targets() throws -> [RenderTarget] {
            try files.map { item in
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                let directory = parts.count == 2 ? parts[1] : into
                guard let directory, !directory.isEmpty else {
                    throw ValidationError("no directory for \(item); give --into DIR or \(item)=DIR")
                }
                return RenderTarget(file: try ConfigFileID(path: parts[0]), directory: directory)
            }
        }

        func validate() throws {
            _ = try targets()
            if files.isEmpty { throw ValidationError("give at least one file to watch") }
        }

        func run() async throws {
            let context = CommandContext.current
            let targets = try targets()
            let command = reload.isEmpty ? nil : try ReloadCommand(reload)
            let settings = try etcd.settings(context.environment)
            try await EtcdClient.withClient(settings: settings) { client in
                let watcher = ConfigWatcher(
                    store: try ConfigStore(client: client),
                    targets: targets,
                    environment: options.ignoreEnvironment ? [:] : context.environment,
                    unknownVariables: options.allowUnknownVariables ? .keep : .fail,
                    reload: command,
                    onRound: { round in
                        for (target, outcome) in round.outcomes where outcome != .unchanged {
                            context.out("\(target): \(outcome.rawValue) (revision \(round.revision))")
                        }
                        for failure in round.failures { context.err("error: \(failure)") }
                        if let reload = round.reload { context.out("reload: \(reload)") }
                    }
                )
                try await watcher.run()
            }
        }
    }

    struct UserData: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "user-data",
            abstract: "Render files from etcd into cloud-init user data (write_files) for a guest configured by its seed.",
            discussion: """
                Each FILE is ROLE/SERVICE/FILE=GUESTPATH: the file rendered from etcd alone (as render does into a new
                file) goes to GUESTPATH in the guest, owned by root, group SERVICE, mode 0640. The output is a
                #cloud-config document for CLOUD_INIT_USER_DATA, replaced atomically (mode 0600 when new); it holds
                passwords, so only its size is printed.
                """
        )

        @OptionGroup var etcd: EtcdOptions
        @OptionGroup var options: RenderOptions

        @Option(help: ArgumentHelp("The user data file to write.", valueName: "file"))
        var output: String

        @Argument(help: ArgumentHelp("Files to carry, ROLE/SERVICE/FILE=GUESTPATH.", valueName: "file"))
        var files: [String]

        func targets() throws -> [CloudConfigFiles.Target] {
            try files.map { argument throws(CloudConfigFilesError) in try CloudConfigFiles.Target(argument: argument) }
        }

        func validate() throws {
            if files.isEmpty { throw ValidationError("give at least one ROLE/SERVICE/FILE=GUESTPATH") }
            let targets = try targets()
            _ = try CloudConfigFiles(files: targets.map { .init(path: $0.guestPath, content: "", owner: "") })
        }

        func run() async throws {
            let context = CommandContext.current
            let targets = try targets()
            let settings = try etcd.settings(context.environment)
            let snapshot = try await EtcdClient.withClient(settings: settings) { client in
                try await ConfigStore(client: client).read()
            }
            let renderer = options.renderer(general: snapshot.tree.general, environment: context.environment)
            let document = try CloudConfigFiles.render(targets, from: snapshot.tree, with: renderer)
            try AtomicFile.write(document.userData, to: output, newFileMode: 0o600)
            for file in document.files {
                context.out("\(file.path): \(file.content.utf8.count) bytes, \(file.owner) \(file.permissions)")
            }
            context.out("user data -> \(output): \(document.files.count) files, \(document.userData.utf8.count) bytes (revision \(snapshot.revision))")
        }
    }
}

/// The process's standard error, written with write(2) (FoundationEssentials has no `FileHandle`).
enum StandardError {
    static func write(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }
}
