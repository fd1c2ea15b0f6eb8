import ArgumentParser
import FoundationEssentials
import LaunchConfiguration
import Logging
import NetAttach
import Netlink
import QEMU

#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// `kvm-launch`: the container entrypoint. With no subcommand it launches the VM; its flags
/// inspect instead of launching; everything it does not recognise is for QEMU. Started by
/// ``Launcher/main(libvirt:)`` (the `kvm-launch` and `kvm-launch-libvirt` executables).
struct KVMLaunch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvm-launch",
        abstract: "Turn this container into a QEMU/KVM virtual machine that takes over its network identity.",
        discussion: """
            Configure with environment variables (AUTO_ATTACH is mandatory; see README.md). Arguments that are \
            not kvm-launch's own (the container's CMD, e.g. -m 2048 -smp 2) are appended to QEMU's command line \
            verbatim, never through a shell: kvm-launch [--list-ifaces [--json]] [--dry-run [--json]] [qemu-args ...]. \
            A CMD of `bash` starts a shell instead of the VM, after showing the planned command.
            """,
        version: KVMLaunchVersion.current,
        subcommands: [Status.self, ConfigAgentCommand.self],
        helpNames: [.long, .customShort("h")]
    )

    @Flag(name: .customLong("list-ifaces"), help: "List the container's interfaces and whether each would be attached; change nothing.")
    var listInterfaces = false

    @Flag(name: .customLong("dry-run"), help: "Print the attach plan and the QEMU command line; change nothing.")
    var dryRun = false

    @Flag(help: "With --list-ifaces or --dry-run: print JSON instead of text.")
    var json = false

    /// The container's CMD: every argument from the first one that is not kvm-launch's own flag.
    /// Split off in ``main()`` before parsing, so nothing QEMU gets is ever interpreted here.
    var qemuArguments: [String] = []

    enum CodingKeys: String, CodingKey {
        case listInterfaces, dryRun, json
    }

    /// The flags that belong to kvm-launch itself when they come first; the first argument that is
    /// not one of these starts QEMU's arguments, so `--help` after `-m 2048` is QEMU's business.
    static let ownFlags: Set<String> = ["--list-ifaces", "--json", "--dry-run", "--help", "-h", "--version"]

    /// Parses kvm-launch's own leading flags with ArgumentParser and hands the rest, untouched, to QEMU.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        // `--version` alone (probes, scripts) is answered before anything else: no parser, no environment.
        if arguments == ["--version"] {
            print(KVMLaunchVersion.current)
            return
        }
        // `kvm-launch config …` is the config agent, a program of its own: everything after
        // `config` goes to it untouched, none of kvm-launch's flags apply.
        if arguments.first == ConfigAgentCommand.configuration.commandName {
            ConfigAgentProgram.exec(Array(arguments.dropFirst()))
        }
        // VM_BACKEND=libvirt in `kvm-launch`: `kvm-launch-libvirt` takes over (same PID), before anything.
        LibvirtVariant.execIfRequested(arguments: arguments, environment: ProcessInfo.processInfo.environment)
        // (No subcommand's name starts with "-": QEMU arguments such as `-m 2048` skip the type names.)
        let isSubcommand = arguments.first.map { name in
            !name.hasPrefix("-") && configuration.subcommands.contains { $0.configuration.commandName == name || "\($0)".lowercased() == name }
        } ?? false
        let own = isSubcommand ? arguments : Array(arguments.prefix { ownFlags.contains($0) })
        let rest = Array(arguments.dropFirst(own.count))
        do {
            // The container's entrypoint (no flag of kvm-launch's own): nothing to parse, so the launch
            // starts without ArgumentParser, whose checks (completion-script requests, the whole command
            // tree's metadata) cost ~1 ms of start-up. `parseAsRoot([])` yields exactly these values.
            if own.isEmpty {
                try await launch(Flags(), qemuArguments: rest)
                return
            }
            var command = try parseAsRoot(own)
            if var launch = command as? KVMLaunch {
                launch.qemuArguments = rest
                try await launch.run()
            } else if var async = command as? AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    /// kvm-launch's own flags as plain values (what a parse with none of them given yields by default).
    struct Flags: Equatable {
        var listInterfaces = false
        var dryRun = false
        var json = false
    }

    mutating func run() async throws {
        try await Self.launch(Flags(listInterfaces: listInterfaces, dryRun: dryRun, json: json), qemuArguments: qemuArguments)
    }

    /// The launch (or, with its flags, the inspection) for these flags and QEMU arguments.
    static func launch(_ flags: Flags, qemuArguments: [String]) async throws {
        let listInterfaces = flags.listInterfaces, dryRun = flags.dryRun, json = flags.json
        // With ETCD_ENDPOINTS set, etcd's general/ variables join the environment (the container's own
        // variables win) before anything is decided: the container still has its address now.
        let environment = try ConfigAgentProgram.launcherEnvironment(container: ProcessInfo.processInfo.environment)
        if listInterfaces {
            try ListInterfaces(environment: environment, json: json).run()
            return
        }
        let configuration = try LaunchCheck.configuration(environment: environment, arguments: qemuArguments)
        // VM_BACKEND=libvirt from etcd's general/: the libvirt variant starts over (nothing changed yet).
        if configuration.backend == .libvirt && LibvirtVariant.provider == nil {
            LibvirtVariant.exec(arguments: Array(CommandLine.arguments.dropFirst()))
        }
        let logger = Self.makeLogger(debug: configuration.debug)
        let debugShell = qemuArguments.first == "bash"
        var launchConfiguration = configuration
        if debugShell { launchConfiguration.extraArguments = [] }
        let launch = Launch(configuration: launchConfiguration, environment: environment, logger: logger,
                            mode: (dryRun || debugShell) ? .dryRun(json: json) : .launch)
        let status: Int32
        do {
            status = try await launch.run()
        } catch let failure as LaunchFailure {
            throw failure
        } catch {
            throw LaunchFailure("\(error)")
        }
        if debugShell {
            // The old container's debug mode: a shell instead of the VM, the planned command shown above.
            print("\nkvm-launch: CMD is bash: starting a shell instead of the VM (nothing was changed)")
            let shell = ["/bin/bash"] + qemuArguments.dropFirst()
            let argv = shell.map { strdup($0) } + [nil]
            fflush(nil)  // what was printed must not vanish with this process image
            execv("/bin/bash", argv)
            throw LaunchFailure("cannot start /bin/bash: \(Errno.current)")
        }
        if !dryRun {
            // The container is restored: exit at once with the launch's status (on the main thread, which
            // runs kvm-launch's executor; see Sources/LauncherExecutor).
            fflush(nil)
            Glibc.exit(status)
        }
        if status != 0 { throw ExitCode(status) }
    }

    static func makeLogger(debug: Bool) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = debug ? .debug : .info
            return handler
        }
        return Logger(label: "kvm-launch")
    }
}

/// `kvm-launch status`: asks QEMU over QMP whether the VM runs; for Docker's HEALTHCHECK and
/// Kubernetes' probes.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Exit 0 when the VM is running (asks QEMU over QMP), 1 otherwise.")

    @Option(help: "The QMP socket: a path, or @NAME for an abstract socket (default: this container's, @kvm-launch/qmp/pidns-<PID namespace>).")
    var socket: String?

    mutating func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        if socket == nil, LibvirtVariant.requested(environment) {
            // (`kvm-launch` has exec'd `kvm-launch-libvirt` by now, which has the provider.)
            guard let provider = LibvirtVariant.provider else { LibvirtVariant.exec(arguments: ["status"]) }
            if !provider.status(runDirectory: Launch.runDirectory(environment)) { throw ExitCode(1) }
            return
        }
        let path = socket ?? Launch.qmpSocketPath
        do {
            let status = try await QMPClient.queryStatus(socketPath: path)
            print("VM \(status.status)")
            if !status.running { throw ExitCode(1) }
        } catch let error as QMPError {
            print("VM not reachable: \(error)")
            throw ExitCode(1)
        }
    }
}

/// The version string `--version` prints.
enum KVMLaunchVersion {
    static let current = "0.1.0"
}

/// A failure that has already been explained in one line; exits non-zero.
package struct LaunchFailure: Error, CustomStringConvertible {
    package var description: String
    /// One line, whatever it quotes: control characters in echoed values are escaped.
    package init(_ description: String) { self.description = LaunchConfiguration.escaped(description, backslashes: false) }
}

enum LaunchCheck {
    /// Builds the configuration or throws its one-line explanation.
    static func configuration(environment: [String: String], arguments: [String], requireSelection: Bool = true) throws -> LaunchConfiguration {
        do {
            return try LaunchConfiguration(environment: environment, arguments: arguments, requireSelection: requireSelection)
        } catch {
            throw LaunchFailure("\(error)")
        }
    }
}
