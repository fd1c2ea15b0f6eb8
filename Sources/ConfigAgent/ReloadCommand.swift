#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import NetworkTypes
import Supervisor

/// A command run after rendered files changed: an argument array, never a shell line.
///
/// `arguments[0]` is a path, or a name looked up in `PATH`.
package struct ReloadCommand: Sendable, Hashable, CustomStringConvertible {
    package var arguments: [String]

    package init(_ arguments: [String]) throws(ReloadCommandError) {
        guard let first = arguments.first, !first.isEmpty else { throw .empty }
        self.arguments = arguments
    }

    package var description: String { arguments.joined(separator: " ") }

    /// How the command ended.
    package enum Termination: Sendable, Hashable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        package var succeeded: Bool { self == .exited(0) }

        package var description: String {
            switch self {
            case .exited(let status): "exit status \(status)"
            case .signalled(let signal): "killed by signal \(signal)"
            }
        }
    }

    /// Runs the command with the agent's environment and waits for it.
    ///
    /// Started with posix_spawn (Supervisor's ``ChildProcess``: no shell, stdio inherited, every other
    /// descriptor closed, signals at their defaults); waited for on a thread of its own (`startDetachedThread`), so no task blocks.
    package func run(environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> Termination {
        let executable = try resolve(arguments[0], path: environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")
        let command = ChildCommand(executable: executable, arguments: Array(arguments.dropFirst()), environment: environment)
        let pid: pid_t
        do {
            pid = try ChildProcess.spawn(command)
        } catch {
            guard case .spawnFailed(_, let code) = error else { throw ReloadCommandError.cannotStart(arguments[0], "\(error)") }
            throw ReloadCommandError.cannotStart(arguments[0], "\(code)")
        }
        return await withCheckedContinuation { continuation in
            let wait: @Sendable () -> Void = {
                var status: Int32 = 0
                _ = retryingOnInterrupt { waitpid(pid, &status, 0) }
                switch ChildTermination(waitStatus: status) {
                case .exited(let code): continuation.resume(returning: .exited(code))
                case .signaled(let signal, _): continuation.resume(returning: .signalled(signal))
                }
            }
            if !startDetachedThread(named: "reload-wait", wait) { wait() }
        }
    }

    private func resolve(_ name: String, path: String) throws(ReloadCommandError) -> String {
        if name.contains("/") { return name }
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw .notFound(name)
    }
}

/// A reload command that cannot run.
package enum ReloadCommandError: Error, Sendable, Hashable, CustomStringConvertible {
    case empty
    case notFound(String)
    case cannotStart(String, String)

    package var description: String {
        switch self {
        case .empty: "the reload command is empty; give it after --reload, e.g. --reload kill -HUP 1"
        case .notFound(let name): "reload command '\(name)' not found in PATH; give its full path"
        case .cannotStart(let name, let reason): "cannot start reload command '\(name)': \(reason)"
        }
    }
}
