import ArgumentParser
import FoundationEssentials
import NetworkTypes
import SystemPackage
import Supervisor

#if canImport(Glibc)
import Glibc
#endif

/// `kvm-launch config …` as `kvm-launch --help` lists it. It is never parsed here:
/// ``KVMLaunch/main()`` hands everything after `config` to ``ConfigAgentProgram`` first.
struct ConfigAgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Load the deployment's key=value configuration into etcd and render it into services' files "
            + "(runs \(ConfigAgentProgram.name); see `kvm-launch config --help`).")

    @Argument(parsing: .captureForPassthrough, help: "The config agent's subcommand and its arguments.")
    var arguments: [String] = []

    func run() throws {
        ConfigAgentProgram.exec(arguments)
    }
}

/// The config agent is its own executable, `kvm-launch-config`, installed next to `kvm-launch`,
/// so the launcher's start never loads swift-nio and BoringSSL.
///
/// - `kvm-launch config ARGS…` replaces this process with it (``exec(_:)``), ARGS unchanged.
/// - With `ETCD_ENDPOINTS` set, the launcher runs `kvm-launch-config env --json` as a child and
///   takes etcd's `general/` variables (and with `ETCD_ROLE` that role's `ROLE/NAME` ones, which
///   win) from its answer (``launcherEnvironment(container:)``).
/// Neither goes through a shell.
enum ConfigAgentProgram {
    /// The executable's file name.
    static let name = "kvm-launch-config"

    /// `kvm-launch-config` in the directory of the running `kvm-launch` (symbolic links resolved).
    static var path: String { SiblingExecutable.path(name) }

    /// Replaces this process with `kvm-launch-config ARGUMENTS…`; returns only by exiting with a
    /// one-line error when it cannot be started.
    static func exec(_ arguments: [String]) -> Never {
        let executable = path
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        fflush(nil)
        execv(executable, argv)
        let reason = Errno.current.description
        writeToStandardError(
            "Error: cannot run the config agent \(executable): \(reason); it ships next to kvm-launch (reinstall both)\n")
        exit(1)
    }

    /// The container's environment merged with etcd's `general/` variables, the container's own
    /// values winning; unchanged (and etcd not contacted) when `ETCD_ENDPOINTS` is unset or blank.
    ///
    /// The agent's one-line error (unusable `ETCD_*` settings, etcd unreachable or too slow within
    /// `ETCD_TIMEOUT`) becomes the launcher's: it was told to use etcd, so it stops.
    static func launcherEnvironment(container: [String: String]) throws(LaunchFailure) -> [String: String] {
        let endpoints = container["ETCD_ENDPOINTS"] ?? ""
        guard endpoints.unicodeScalars.contains(where: { !" \t\r\n".unicodeScalars.contains($0) }) else { return container }
        let result = try run(["env", "--json"], environment: container)
        guard result.status == 0 else {
            let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("Error: ") }.map { $0.dropFirst("Error: ".count) }
            let reason = errors.isEmpty ? "\(name) failed (\(result.termination))" : errors.joined(separator: "; ")
            throw LaunchFailure("cannot read etcd's general/: \(reason)")
        }
        guard let general = try? JSONDecoder().decode([String: String].self, from: Data(result.stdout.utf8)) else {
            throw LaunchFailure("cannot read etcd's general/: \(name) env --json did not print a JSON object of strings")
        }
        let added = general.keys.filter { container[$0] == nil }.sorted()
        let kept = general.keys.filter { container[$0] != nil }.sorted()
        let blank: (Character) -> Bool = { $0.isWhitespace && !$0.isNewline }
        let role = String((container["ETCD_ROLE"] ?? "").drop(while: blank).reversed().drop(while: blank).reversed())
        writeToStandardError(
            "kvm-launch: settings from etcd general/\(role.isEmpty ? "" : " and \(role)/"): added \(added.isEmpty ? "none" : added.joined(separator: ","))"
                + "; kept from the container: \(kept.isEmpty ? "none" : kept.joined(separator: ","))\n")
        return general.merging(container) { _, containerValue in containerValue }
    }

    struct Output {
        var status: Int32
        var termination: ChildTermination
        var stdout: String
        var stderr: String
    }

    /// Runs `kvm-launch-config ARGUMENTS…` (no shell), stdin from /dev/null, and collects its output.
    static func run(_ arguments: [String], environment: [String: String]) throws(LaunchFailure) -> Output {
        let executable = path
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        guard pipe(&outPipe) == 0 else { throw LaunchFailure("cannot run \(executable): pipe: \(Errno.current)") }
        guard pipe(&errPipe) == 0 else {
            close(outPipe[0]); close(outPipe[1])
            throw LaunchFailure("cannot run \(executable): pipe: \(Errno.current)")
        }
        // Nothing else this process starts may inherit them (the child gets its copies as 1 and 2).
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer {
            close(outPipe[0]); close(errPipe[0])
            if null >= 0 { close(null) }
        }
        let command = ChildCommand(
            executable: executable,
            arguments: arguments,
            environment: environment,
            fileDescriptors: [
                FileDescriptorMapping(parent: null, child: 0),
                FileDescriptorMapping(parent: outPipe[1], child: 1),
                FileDescriptorMapping(parent: errPipe[1], child: 2),
            ]
        )
        let pid: pid_t
        do {
            pid = try ChildProcess.spawn(command)
        } catch {
            close(outPipe[1]); close(errPipe[1])
            throw LaunchFailure("cannot run the config agent: \(error); it ships next to kvm-launch (reinstall both)")
        }
        close(outPipe[1]); close(errPipe[1])
        let (stdout, stderr) = drain(outPipe[0], errPipe[0])
        var status: Int32 = 0
        _ = retryingOnInterrupt { waitpid(pid, &status, 0) }
        let termination = ChildTermination(waitStatus: status)
        let exitStatus: Int32 = if case .exited(let code) = termination { code } else { 128 }
        return Output(status: exitStatus, termination: termination, stdout: stdout, stderr: stderr)
    }

    /// Reads both pipes to their end at once, so neither can fill up and stall the child.
    private static func drain(_ out: Int32, _ err: Int32) -> (String, String) {
        var buffers: [[UInt8]] = [[], []]
        var fds = [pollfd(fd: out, events: Int16(POLLIN), revents: 0), pollfd(fd: err, events: Int16(POLLIN), revents: 0)]
        var chunk = [UInt8](repeating: 0, count: 65536)
        while fds.contains(where: { $0.fd >= 0 }) {
            if retryingOnInterrupt({ poll(&fds, nfds_t(fds.count), -1) }) < 0 { break }
            for index in fds.indices where fds[index].fd >= 0 && fds[index].revents != 0 {
                let count = retryingOnInterrupt { chunk.withUnsafeMutableBytes { read(fds[index].fd, $0.baseAddress, $0.count) } }
                if count > 0 {
                    buffers[index] += chunk[0..<count]
                } else {
                    fds[index].fd = -1  // end of file, or a read error: nothing more comes from it
                }
            }
        }
        return (String(decoding: buffers[0], as: UTF8.self), String(decoding: buffers[1], as: UTF8.self))
    }
}
