import Foundation
import QEMU
import TestSupport

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
            throw FixtureFailure("QEMU did not create \(socketPath)")
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
