import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A long-running child (kvm-launch with its VM) whose stdout is read line by line as it comes,
/// whose stdin can be typed into, and whose exit can be awaited with a deadline.
///
/// Waiting is on a condition variable signalled by the reader, never a sleep loop.
package final class ConsoleProcess: @unchecked Sendable {  // all mutable state is guarded by `condition`
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let errors = Pipe()
    private let condition = NSCondition()
    private var outputLines: [String] = []
    private var errorLines: [String] = []
    private var partial = Data()
    private var partialError = Data()
    private var exited = false
    private var exitStatus: Int32 = 0
    private var exitBySignal = false
    private var outputClosed = false
    private var errorClosed = false

    /// Starts `arguments` (absolute path first) with exactly `environment`.
    package init(_ arguments: [String], environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.environment = environment
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        process.terminationHandler = { [weak self] finished in
            guard let self else { return }
            let status = finished.terminationStatus
            let bySignal = finished.terminationReason == .uncaughtSignal
            self.condition.lock()
            self.exitStatus = status
            self.exitBySignal = bySignal
            self.exited = true
            self.condition.broadcast()
            self.condition.unlock()
        }
        output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            self?.take(handle.availableData, error: false)
        }
        errors.fileHandleForReading.readabilityHandler = { [weak self] handle in
            self?.take(handle.availableData, error: true)
        }
        try process.run()
    }

    package var pid: Int32 { process.processIdentifier }

    private func take(_ data: Data, error: Bool) {
        condition.lock()
        defer { condition.broadcast(); condition.unlock() }
        if data.isEmpty {
            if error { errorClosed = true } else { outputClosed = true }
            (error ? errors : output).fileHandleForReading.readabilityHandler = nil
            let rest = error ? partialError : partial
            if !rest.isEmpty { append(String(decoding: rest, as: UTF8.self), error: error) }
            if error { partialError = Data() } else { partial = Data() }
            return
        }
        var buffer = (error ? partialError : partial) + data
        while let newline = buffer.firstIndex(of: 0x0A) {
            let line = buffer[buffer.startIndex..<newline]
            append(String(decoding: line, as: UTF8.self), error: error)
            buffer = Data(buffer[buffer.index(after: newline)...])
        }
        if error { partialError = buffer } else { partial = buffer }
    }

    private func append(_ line: String, error: Bool) {
        let clean = line.replacingOccurrences(of: "\r", with: "")
        if error { errorLines.append(clean) } else { outputLines.append(clean) }
    }

    /// Every stdout line so far.
    package var lines: [String] {
        condition.lock()
        defer { condition.unlock() }
        return outputLines
    }

    /// Every stderr line so far.
    package var stderrLines: [String] {
        condition.lock()
        defer { condition.unlock() }
        return errorLines
    }

    /// Waits until a stdout line satisfies `predicate` (looking at lines from `after` on), the
    /// process exits, or the deadline passes. Returns the line, or nil.
    package func waitForLine(after start: Int = 0, onStderr: Bool = false, timeout: TimeInterval, _ predicate: (String) -> Bool) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        var checked = start
        while true {
            let lines = onStderr ? errorLines : outputLines
            while checked < lines.count {
                if predicate(lines[checked]) { return lines[checked] }
                checked += 1
            }
            if (exited && outputClosed) || !condition.wait(until: deadline) { return nil }
        }
    }

    /// Waits for a line containing `text`.
    package func waitFor(_ text: String, after start: Int = 0, timeout: TimeInterval) -> String? {
        waitForLine(after: start, timeout: timeout) { $0.contains(text) }
    }

    /// Types text on the child's stdin.
    package func send(_ text: String) {
        input.fileHandleForWriting.write(Data(text.utf8))
    }

    package func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// Waits for the exit; returns the status, or nil when the deadline passed first.
    package func waitForExit(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        while !exited {
            if !condition.wait(until: deadline) { condition.unlock(); return nil }
        }
        // The exit can be seen before the last stderr lines were read: wait (briefly) for the pipe's end.
        let drained = min(deadline, Date().addingTimeInterval(2))
        while !errorClosed && condition.wait(until: drained) {}
        let status = exitStatus
        condition.unlock()
        // The child is reaped; let Foundation finish with it too, or it keeps the Process and its three
        // pipes open for the rest of the test run.
        process.waitUntilExit()
        return status
    }

    /// Waits until stdout and stderr reached end of file (every line is in ``lines`` and
    /// ``stderrLines``); false when `deadline` passed first.
    package func waitForOutputClosed(until deadline: Date) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !(outputClosed && errorClosed) {
            if !condition.wait(until: deadline) { return false }
        }
        return true
    }

    /// Whether the child was ended by a signal (`terminationReason == .uncaughtSignal`).
    package var endedBySignal: Bool {
        condition.lock()
        defer { condition.unlock() }
        return exited && exitBySignal
    }

    /// SIGKILLs the child if it still runs and waits for it: the cleanup of last resort.
    package func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        _ = waitForExit(timeout: 10)
    }
}
