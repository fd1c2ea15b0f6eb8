import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The `ContainerStart` helper built next to the tests (Tests/ContainerStart): runs a command as PID 1
/// of a new PID namespace with a fresh /run, the way a container runtime starts an entrypoint.
package var containerStartBinary: String { productsDirectory.appendingPathComponent("ContainerStart").path }

/// A fixture step or a wait that did not work out; the message says what and shows the evidence.
package struct FixtureFailure: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// How a process ended.
package enum Termination: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    package var description: String {
        switch self {
        case .exited(let status): return "exit status \(status)"
        case .signalled(let number): return "killed by signal \(number)"
        }
    }
}

extension ContainerFixture {
    /// Starts `command` in the container namespace as a container runtime starts an entrypoint:
    /// PID 1 of a new PID namespace, a private mount namespace with its own /proc and an empty /run
    /// (what a Kubernetes restart gives: the same network namespace, a fresh filesystem).
    /// The returned process is ContainerStart, which ends exactly as the command ends.
    package func startAsContainer(_ command: [String], environment: [String: String]) throws -> ConsoleProcess {
        try ConsoleProcess(["/usr/sbin/ip", "netns", "exec", container.name, containerStartBinary] + command, environment: environment)
    }
}

extension ConsoleProcess {
    /// Waits (bounded) for the exit; nil when the deadline passed first. Then gives the output
    /// readers up to 5 s more to take the last lines (the exit does not wait for them).
    package func waitForTermination(timeout: TimeInterval) -> Termination? {
        guard let status = waitForExit(timeout: timeout) else { return nil }
        _ = waitForOutputClosed(until: Date().addingTimeInterval(5))
        return endedBySignal ? .signalled(status) : .exited(status)
    }

    /// For a process started with ``ContainerFixture/startAsContainer(_:environment:)``: the command's
    /// PID as seen from here, once ContainerStart reported it. Throws when it did not within `timeout`,
    /// or when that process is not PID 1 of a PID namespace of its own.
    package func containerPID1(timeout: TimeInterval = 30) throws -> Int32 {
        guard let line = waitForLine(onStderr: true, timeout: timeout, { $0.hasPrefix("ContainerStart: pid1 ") }),
              let pid = Int32(line.dropFirst("ContainerStart: pid1 ".count)) else {
            throw FixtureFailure("ContainerStart did not report its PID 1 within \(timeout) s; stderr: \(stderrLines.suffix(10))")
        }
        guard let namespacePIDs = namespacePIDs(of: pid) else {
            throw FixtureFailure("process \(pid) is gone before it could be checked; stderr: \(stderrLines.suffix(10))")
        }
        guard namespacePIDs.count >= 2, namespacePIDs.last == 1 else {
            throw FixtureFailure("process \(pid) is not PID 1 of its own PID namespace (NSpid \(namespacePIDs))")
        }
        return pid
    }
}

/// The `NSpid` line of /proc/PID/status: the process's PID in each PID namespace, outermost first.
package func namespacePIDs(of pid: Int32) -> [Int32]? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") }) else { return nil }
    return line.dropFirst("NSpid:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Int32($0) }
}
