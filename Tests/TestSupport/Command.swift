import Foundation
import Supervisor

#if canImport(Glibc)
import Glibc
#endif

/// Result of a finished process.
package struct ProcessResult: Sendable {
    /// The exit status, or 128 + the signal number when a signal ended it (as a shell reports it).
    package var status: Int32
    package var stdout: String
    /// Empty when the command ran with `mergeOutput`: then everything is in ``stdout``.
    package var stderr: String
    /// How the process ended.
    package var termination: ChildTermination

    package var succeeded: Bool { status == 0 }
    /// Everything the command printed (stderr first when not merged).
    package var output: String { stderr + stdout }
}

/// An error from a fixture command, with its output.
package struct CommandFailed: Error, CustomStringConvertible {
    package var command: [String]
    package var result: ProcessResult
    package var description: String {
        "`\(command.joined(separator: " "))` \(result.termination): \(result.stderr)\(result.stdout)"
    }
}

/// A fixture command that did not finish within its deadline; it was killed.
package struct CommandTimedOut: Error, CustomStringConvertible {
    package var command: [String]
    package var seconds: TimeInterval
    package var stdout: String
    package var stderr: String
    package var description: String {
        "`\(command.joined(separator: " "))` did not finish within \(seconds) s and was killed; output so far: \(stderr)\(stdout)"
    }
}

/// Runs a program (no shell) to its end and collects its output. The one process runner of the tests.
///
/// - The program is found on `PATH` unless given as an absolute path; `environment` nil inherits ours.
/// - It is started by the product's own ``ChildProcess/spawn(_:)``: no blocked signals, default
///   dispositions (so `udhcpc` sees its SIGUSR1 even when a test thread blocked it), and no descriptor
///   of the test process but stdin/stdout/stderr.
/// - stdout and stderr go to unlinked temporary files, never pipes: a daemon the program leaves
///   behind (dhclient forks one) cannot keep the call waiting for an end of file.
/// - Bounded: a program still running after `timeout` seconds is killed and ``CommandTimedOut``
///   thrown, so a hang fails the test.
/// - `check`: a non-zero status throws ``CommandFailed`` with the output.
@discardableResult
package func run(_ arguments: [String], environment: [String: String]? = nil, input: String? = nil,
                mergeOutput: Bool = false, check: Bool = true, timeout: TimeInterval = 120) throws -> ProcessResult {
    let child = try SpawnedCommand(arguments, environment: environment, input: input, mergeOutput: mergeOutput)
    return try child.finish(check: check, timeout: timeout)
}

/// ``run(_:environment:input:mergeOutput:check:timeout:)`` for async code: the wait happens on a
/// thread of its own, so a long client run never occupies one of the few Swift concurrency threads
/// that an in-process server under test needs at the same time.
@discardableResult
package func runAsync(_ arguments: [String], environment: [String: String]? = nil, input: String? = nil,
                     mergeOutput: Bool = false, check: Bool = true, timeout: TimeInterval = 120) async throws -> ProcessResult {
    let child = try SpawnedCommand(arguments, environment: environment, input: input, mergeOutput: mergeOutput)
    return try await onOwnThread { try child.finish(check: check, timeout: timeout) }
}

/// Runs blocking work (fixture commands, waits) on a thread of its own and awaits it, so an async test
/// never holds one of the few Swift concurrency threads (two on a 2-core machine) that an in-process
/// server under test needs to start and answer.
package func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result(catching: body)) }.start()
    }
}

/// A started command whose output goes to anonymous files.
private final class SpawnedCommand: Sendable {
    let arguments: [String]
    let pid: pid_t
    let stdout: Int32
    let stderr: Int32?

    init(_ arguments: [String], environment: [String: String]?, input: String?, mergeOutput: Bool) throws {
        guard let name = arguments.first else { throw FixtureFailure("run: no command") }
        self.arguments = arguments
        let executable = try Self.resolve(name, path: environment?["PATH"] ?? ProcessInfo.processInfo.environment["PATH"])
        let stdin = try Self.anonymousFile(contents: input ?? "")
        defer { close(stdin) }
        stdout = try Self.anonymousFile()
        do {
            stderr = mergeOutput ? nil : try Self.anonymousFile()
        } catch {
            close(stdout)
            throw error
        }
        let mappings = [FileDescriptorMapping(parent: stdin, child: 0), FileDescriptorMapping(parent: stdout, child: 1),
                        FileDescriptorMapping(parent: stderr ?? stdout, child: 2)]
        do {
            pid = try ChildProcess.spawn(ChildCommand(executable: executable, arguments: Array(arguments.dropFirst()),
                                                      environment: environment, fileDescriptors: mappings))
        } catch {
            close(stdout)
            if let stderr { close(stderr) }
            throw FixtureFailure("cannot start `\(arguments.joined(separator: " "))`: \(error)")
        }
    }

    /// Waits (bounded) for the exit, then reads the output and closes the files.
    func finish(check: Bool, timeout: TimeInterval) throws -> ProcessResult {
        defer {
            close(stdout)
            if let stderr { close(stderr) }
        }
        let exited = DispatchSemaphore(value: 0)
        let status = WaitStatus()
        let child = pid
        Thread {
            var raw: Int32 = 0
            while waitpid(child, &raw, 0) < 0 && errno == EINTR {}
            status.value = raw
            exited.signal()
        }.start()
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            kill(pid, SIGKILL)
            _ = exited.wait(timeout: .now() + 10)
            throw CommandTimedOut(command: arguments, seconds: timeout, stdout: Self.contents(of: stdout),
                                  stderr: stderr.map(Self.contents(of:)) ?? "")
        }
        let termination = ChildTermination(waitStatus: status.value)
        let code: Int32 = switch termination {
        case .exited(let code): code
        case .signaled(let signal, _): 128 + signal
        }
        let result = ProcessResult(status: code, stdout: Self.contents(of: stdout),
                                   stderr: stderr.map(Self.contents(of:)) ?? "", termination: termination)
        if check && result.status != 0 { throw CommandFailed(command: arguments, result: result) }
        return result
    }

    /// Written by the waiting thread before it signals, read after the signal.
    private final class WaitStatus: @unchecked Sendable {
        var value: Int32 = 0
    }

    static func resolve(_ name: String, path: String?) throws -> String {
        if name.hasPrefix("/") { return name }
        let directories = (path ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(separator: ":")
        for directory in directories where access("\(directory)/\(name)", X_OK) == 0 { return "\(directory)/\(name)" }
        throw FixtureFailure("`\(name)` is not installed (not found on PATH \(path ?? "-"))")
    }

    /// A close-on-exec temporary file with no name, holding `contents`, positioned at its start.
    static func anonymousFile(contents: String = "") throws -> Int32 {
        var template = Array("/tmp/kl-run-XXXXXX".utf8CString)
        // mkostemp is not in the Glibc module; the moment without close-on-exec does not matter, every
        // child the tests start closes the descriptors it was not given (ChildProcess, Foundation).
        let fd = mkstemp(&template)
        guard fd >= 0 else { throw FixtureFailure("mkstemp: errno \(errno)") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        let bytes = Array(contents.utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count, lseek(fd, 0, SEEK_SET) == 0 else {
            close(fd)
            throw FixtureFailure("cannot write a temporary file: errno \(errno)")
        }
        return fd
    }

    static func contents(of fd: Int32) -> String {
        var data = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        var offset: off_t = 0
        while true {
            let count = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            data += chunk[0..<count]
            offset += off_t(count)
        }
        return String(decoding: data, as: UTF8.self)
    }
}
