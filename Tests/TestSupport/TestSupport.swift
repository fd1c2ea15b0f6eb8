import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Whether the tests run as root; tests that make namespaces are enabled only then.
public let isRoot = getuid() == 0

/// The reason shown when a root-only test is skipped.
public let needsRootReason: Comment = "needs root: creates network namespaces and links (CI runs as root)"

/// Result of a finished process.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// An error from a fixture command, with its output.
public struct CommandFailed: Error, CustomStringConvertible {
    public var command: [String]
    public var result: ProcessResult
    public var description: String {
        "`\(command.joined(separator: " "))` exited \(result.status): \(result.stderr)\(result.stdout)"
    }
}

/// A fixture command that did not finish within its deadline; it was killed.
public struct CommandTimedOut: Error, CustomStringConvertible {
    public var command: [String]
    public var seconds: TimeInterval
    public var stdout: String
    public var stderr: String
    public var description: String {
        "`\(command.joined(separator: " "))` did not finish within \(seconds) s and was killed; output so far: \(stderr)\(stdout)"
    }
}

/// Runs a program (no shell) and collects its output. Bounded: a program still running after
/// `timeout` seconds is killed and ``CommandTimedOut`` thrown, so a hang fails the test.
@discardableResult
public func run(_ arguments: [String], environment: [String: String]? = nil, check: Bool = true,
                timeout: TimeInterval = 120) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0].hasPrefix("/") ? arguments[0] : "/usr/bin/env")
    process.arguments = arguments[0].hasPrefix("/") ? Array(arguments.dropFirst()) : arguments
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    let finished = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in finished.signal() }
    try process.run()
    // Drain both pipes on their own threads so a chatty child cannot block on a full pipe.
    let outData = ErrorCollector(out.fileHandleForReading)
    let errData = ErrorCollector(err.fileHandleForReading)
    if finished.wait(timeout: .now() + timeout) == .timedOut {
        kill(process.processIdentifier, SIGKILL)
        if finished.wait(timeout: .now() + 10) == .success { process.waitUntilExit() }
        throw CommandTimedOut(command: arguments, seconds: timeout,
                              stdout: String(decoding: outData.wait(timeout: 2) ?? Data(), as: UTF8.self),
                              stderr: String(decoding: errData.wait(timeout: 2) ?? Data(), as: UTF8.self))
    }
    // The child is gone; without this, Foundation keeps the Process and its pipes (two descriptors per
    // call) alive when only a termination handler was used, and the test process runs out of them.
    process.waitUntilExit()
    // A background child of the program may keep the pipes open: bounded too, and said.
    guard let stdout = outData.wait(timeout: 10), let stderr = errData.wait(timeout: 10) else {
        throw FixtureFailure("`\(arguments.joined(separator: " "))` exited but something it started kept its output open for 10 s")
    }
    let result = ProcessResult(status: process.terminationStatus,
                               stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    if check && result.status != 0 { throw CommandFailed(command: arguments, result: result) }
    return result
}

/// Drains a pipe on a background thread.
final class ErrorCollector: @unchecked Sendable {  // written once by the thread, read after the semaphore
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)
    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }
    /// Everything read, once the writer closed the pipe; nil when it did not within `timeout`.
    func wait(timeout: TimeInterval) -> Data? {
        guard done.wait(timeout: .now() + timeout) == .success else { return nil }
        done.signal()  // later calls return at once
        return data
    }
}

/// Where SwiftPM put the built products (`.build/debug`): the directory of the running test binary.
public var productsDirectory: URL {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
}

/// The built `kvm-launch` binary.
public var kvmLaunchBinary: String { productsDirectory.appendingPathComponent("kvm-launch").path }

/// The built `kvm-launch-libvirt` binary (the launcher with VM_BACKEND=libvirt, which `kvm-launch` execs).
public var kvmLaunchLibvirtBinary: String { productsDirectory.appendingPathComponent("kvm-launch-libvirt").path }

/// A short random suffix for names that must not clash between parallel tests.
public func uniqueSuffix() -> String {
    String(UInt32.random(in: 0..<UInt32.max), radix: 36)
}

/// A throwaway network namespace (`/run/netns/NAME`), deleted by ``destroy()``.
///
/// Use with `defer { namespace.destroy() }` right after creating it, so it goes also when the test fails.
public final class TestNamespace: Sendable {
    public let name: String
    public var path: String { "/run/netns/\(name)" }

    public init(prefix: String = "kl") throws {
        name = "\(prefix)-\(uniqueSuffix())"
        try run(["ip", "netns", "add", name])
        do {
            try exec(["ip", "link", "set", "lo", "up"])
            // No duplicate address detection: link-local IPv6 addresses are final at once, so a
            // snapshot taken right after setup does not differ from a later one in "tentative".
            try exec(["sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"])
        } catch {
            destroy()
            throw error
        }
    }

    /// Runs a command inside the namespace.
    @discardableResult
    public func exec(_ arguments: [String], environment: [String: String]? = nil, check: Bool = true) throws -> ProcessResult {
        try run(["ip", "netns", "exec", name] + arguments, environment: environment, check: check)
    }

    /// Runs `ip ARGS` inside the namespace (fixture building only; product code never runs ip).
    @discardableResult
    public func ip(_ arguments: String) throws -> ProcessResult {
        try exec(["ip"] + arguments.split(separator: " ").map(String.init))
    }

    /// Deletes the namespace and every link in it.
    public func destroy() {
        _ = try? run(["ip", "netns", "del", name], check: false)
    }
}
