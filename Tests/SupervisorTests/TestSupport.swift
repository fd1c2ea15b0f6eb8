import Foundation
import Dispatch
import Testing
import Synchronization
import QEMU
import Supervisor
import TestSupport

/// A pipe whose write end is handed to a child and whose read end the test reads
/// line by line. Both ends are close-on-exec in this process.
final class LinePipe: @unchecked Sendable {
    // @unchecked: `buffer` is only touched by `readLine`, which tests call from one task at a time.
    let readEnd: Int32
    let writeEnd: Int32
    /// Whether this process's write end is still open: closing twice would close
    /// whatever descriptor another test opened under the same number meanwhile.
    private let writeEndOpen = Mutex(true)
    private var buffer: [UInt8] = []

    init() throws {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw FixtureFailure("pipe failed") }
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        readEnd = ends[0]
        writeEnd = ends[1]
    }

    /// Closes this process's copy of the write end, so EOF comes when the child's copies close.
    func closeWriteEnd() {
        let wasOpen = writeEndOpen.withLock { open in
            defer { open = false }
            return open
        }
        if wasOpen { close(writeEnd) }
    }

    /// How long a read waits for the next line before the test fails.
    static let defaultTimeout: TimeInterval = 60

    enum ReadResult: Equatable {
        case line(String)
        case endOfFile
        case timedOut
    }

    /// The next line, or nil at end of file. Blocks on a dispatch thread, not the test's, for at
    /// most `timeout` seconds: when no line came by then, it records a test failure and returns nil.
    func readLine(timeout: TimeInterval = LinePipe.defaultTimeout, sourceLocation: SourceLocation = #_sourceLocation) async -> String? {
        switch await read(timeout: timeout) {
        case .line(let line): return line
        case .endOfFile: return nil
        case .timedOut:
            Issue.record("no line from the pipe within \(timeout) s", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// The next line, end of file, or that `timeout` seconds passed first.
    func read(timeout: TimeInterval) async -> ReadResult {
        let deadline = Date().addingTimeInterval(timeout)
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: self.readLineBlocking(deadline: deadline))
            }
        }
    }

    /// Everything until end of file (each line bounded as in ``readLine(timeout:sourceLocation:)``).
    func readAll(sourceLocation: SourceLocation = #_sourceLocation) async -> [String] {
        var lines: [String] = []
        while let line = await readLine(sourceLocation: sourceLocation) { lines.append(line) }
        return lines
    }

    private func readLineBlocking(deadline: Date) -> ReadResult {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return .line(line)
            }
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 { return .timedOut }
            var poller = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(remaining * 1000, 60_000).rounded(.up)))
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }  // the loop re-checks the deadline
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { Glibc.read(readEnd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 {
                guard !buffer.isEmpty else { return .endOfFile }
                defer { buffer.removeAll() }
                return .line(String(decoding: buffer, as: UTF8.self))
            }
            buffer += chunk[0..<count]
        }
    }

    deinit {
        close(readEnd)
        closeWriteEnd()
    }
}

/// An AsyncStream of stop requests the test feeds by hand.
func makeStopStream() -> (AsyncStream<StopRequest>, AsyncStream<StopRequest>.Continuation) {
    AsyncStream.makeStream(of: StopRequest.self)
}

/// Arguments for a real QEMU with no disk, paused (`-S`): `system_powerdown`
/// does nothing there, so it only stops when told to quit or killed.
func pausedQEMUArguments(socketPath: String) throws -> [String] {
    try QEMUConfiguration(
        accelerator: .tcg,
        memoryMiB: 64,
        disk: nil,
        qmpSocketPath: socketPath,
        extraArguments: ["-S"]
    ).arguments()
}

/// Waits (bounded) for a path to appear.
func waitForFile(_ path: String) async throws {
    for _ in 0..<200 where !FileManager.default.fileExists(atPath: path) {
        try await Task.sleep(for: .milliseconds(50))
    }
    guard FileManager.default.fileExists(atPath: path) else { throw FixtureFailure("\(path) never appeared") }
}

/// /dev/null, opened close-on-exec, closed when released.
final class NullDevice: Sendable {
    let fd: Int32
    init() { fd = open("/dev/null", O_RDWR | O_CLOEXEC) }
    deinit { close(fd) }
}

/// The SupervisorTestHelper executable built next to the test bundle.
func helperPath() throws -> String {
    let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
    // On Linux the test bundle is `<build>/debug/<package>PackageTests.xctest`, an executable file.
    for _ in 0..<3 {
        let candidate = directory.appendingPathComponent("SupervisorTestHelper").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    throw FixtureFailure("SupervisorTestHelper not found near \(executable)")
}

/// The helper running as a separate process, its stdout readable by line.
final class HelperProcess {
    let process = Process()
    private let lines: LinePipe

    init(_ arguments: [String]) throws {
        lines = try LinePipe()
        process.executableURL = URL(fileURLWithPath: try helperPath())
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(fileDescriptor: lines.writeEnd, closeOnDealloc: false)
        try process.run()
        lines.closeWriteEnd()
    }

    var pid: Int32 { process.processIdentifier }

    func readLine(sourceLocation: SourceLocation = #_sourceLocation) async -> String? {
        await lines.readLine(sourceLocation: sourceLocation)
    }

    /// The first line starting with `prefix`, skipping others; throws when the helper ends without
    /// one or none came within `timeout` seconds.
    func line(startingWith prefix: String, timeout: TimeInterval = LinePipe.defaultTimeout) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            switch await lines.read(timeout: deadline.timeIntervalSinceNow) {
            case .line(let line) where line.hasPrefix(prefix): return line
            case .line: continue
            case .endOfFile: throw FixtureFailure("helper ended without a '\(prefix)' line")
            case .timedOut: throw FixtureFailure("no '\(prefix)' line from the helper within \(timeout) s")
            }
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
    }
}

/// `key=value` fields of a helper result line.
func fields(_ line: String) -> [String: String] {
    var result: [String: String] = [:]
    for part in line.split(separator: " ") {
        let pair = part.split(separator: "=", maxSplits: 1)
        if pair.count == 2 { result[String(pair[0])] = String(pair[1]) }
    }
    return result
}
