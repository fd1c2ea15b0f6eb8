import Foundation
import QEMU

/// A temporary directory removed when the value is released (also when a test fails).
final class TemporaryDirectory {
    let path: String

    init() throws {
        // Short, so unix socket paths inside stay below the 107-byte limit.
        var template = Array("/tmp/kl-\(UInt32.random(in: 0...UInt32.max))-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        path = String(cString: created)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

struct CommandFailed: Error, CustomStringConvertible {
    var description: String
}

/// Runs a program to build a fixture; throws when it fails.
func runTool(_ executable: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    let errors = Pipe()
    process.standardError = errors
    try process.run()
    let message = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw CommandFailed(description: "\(executable) \(arguments) failed: \(String(decoding: message, as: UTF8.self))")
    }
}

let qemuBinary = "/usr/bin/qemu-system-x86_64"
let qemuImg = "/usr/bin/qemu-img"

/// A real QEMU started from a ``QEMUConfiguration`` with no disk and paused (`-S`),
/// killed when released.
final class RunningQEMU {
    let process = Process()
    let socketPath: String

    init(in directory: TemporaryDirectory, extraArguments: [String] = ["-S"]) async throws {
        socketPath = directory.file("qmp.sock")
        let configuration = QEMUConfiguration(
            accelerator: .tcg,
            memoryMiB: 64,
            disk: nil,
            graphics: .vga(model: "std", vnc: "unix:\(directory.file("vnc.sock"))"),
            qmpSocketPath: socketPath,
            extraArguments: extraArguments
        )
        process.executableURL = URL(fileURLWithPath: qemuBinary)
        process.arguments = try configuration.arguments()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // QEMU creates the socket during start-up; wait for it (bounded).
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: socketPath) && process.isRunning {
            try await Task.sleep(for: .milliseconds(50))
        }
        guard FileManager.default.fileExists(atPath: socketPath) else {
            throw CommandFailed(description: "QEMU did not create \(socketPath)")
        }
    }

    /// Waits (bounded) for QEMU to exit and returns its status, or nil if it is still running.
    func waitForExit() async throws -> Int32? {
        for _ in 0..<200 where process.isRunning {
            try await Task.sleep(for: .milliseconds(50))
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
