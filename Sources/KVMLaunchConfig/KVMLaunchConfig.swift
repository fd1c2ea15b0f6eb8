import ArgumentParser
import ConfigAgent
import Logging

/// `kvm-launch-config`: the config agent (`kvm-launch config …` execs this binary with its
/// arguments unchanged). A program of its own so that the launcher never loads swift-nio and
/// BoringSSL; like the launcher it links FoundationEssentials only. See Sources/ConfigAgent/README.md.
@main
enum KVMLaunchConfig {
    /// Parses the arguments as `ConfigCommand` and runs the chosen subcommand.
    static func main() async {
        // Logs go to stderr: stdout carries what `env` prints for `eval` and for the launcher's JSON.
        LoggingSystem.bootstrap { label in StreamLogHandler.standardError(label: label) }
        do {
            var command = try ConfigCommand.parseAsRoot()
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            ConfigCommand.exit(withError: error)
        }
    }
}
