import ArgumentParser
import Foundation
import LaunchConfiguration
import Logging
import NetAttach
import Netlink

/// `kvm-launch`: the container entrypoint. With no subcommand it launches the VM; its flags
/// inspect instead of launching; everything it does not recognise is for QEMU.
@main
struct KVMLaunch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvm-launch",
        abstract: "Turn this container into a QEMU/KVM virtual machine that takes over its network identity.",
        discussion: """
            Configure with environment variables (AUTO_ATTACH is mandatory; see README.md). Arguments that are \
            not kvm-launch's own (the container's CMD, e.g. -m 2048 -smp 2) are appended to QEMU's command line \
            verbatim, never through a shell: kvm-launch [--list-ifaces [--json]] [qemu-args ...]
            """,
        version: KVMLaunchVersion.current,
        subcommands: [],
        helpNames: [.long, .customShort("h")]
    )

    @Flag(name: .customLong("list-ifaces"), help: "List the container's interfaces and whether each would be attached; change nothing.")
    var listInterfaces = false

    @Flag(help: "With --list-ifaces: print JSON instead of a table.")
    var json = false

    /// The container's CMD: every argument from the first one that is not kvm-launch's own flag.
    /// Split off in ``main()`` before parsing, so nothing QEMU gets is ever interpreted here.
    var qemuArguments: [String] = []

    enum CodingKeys: String, CodingKey {
        case listInterfaces, json
    }

    /// The flags that belong to kvm-launch itself when they come first; the first argument that is
    /// not one of these starts QEMU's arguments, so `--help` after `-m 2048` is QEMU's business.
    static let ownFlags: Set<String> = ["--list-ifaces", "--json", "--dry-run", "--help", "-h", "--version"]

    /// Parses kvm-launch's own leading flags with ArgumentParser and hands the rest, untouched, to QEMU.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let own = Array(arguments.prefix { ownFlags.contains($0) })
        let rest = Array(arguments.dropFirst(own.count))
        do {
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

    mutating func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        if listInterfaces {
            try ListInterfaces(environment: environment, json: json).run()
            return
        }
        _ = try LaunchCheck.configuration(environment: environment, arguments: qemuArguments)
        throw LaunchFailure("launching is not available in this build yet; use --list-ifaces")
    }
}

/// The version string `--version` prints.
enum KVMLaunchVersion {
    static let current = "0.1.0"
}

/// A failure that has already been explained in one line; exits non-zero.
struct LaunchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
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
