import Foundation
import TestSupport
import Testing
import QEMU

/// The serial console must pass Ctrl-C to the guest. With `signal=off` QEMU
/// clears ISIG on its terminal, so the terminal sends the 0x03 byte instead of
/// raising SIGINT (which would make QEMU quit).
@Suite struct ConsoleTests {
    /// Starts QEMU with `arguments` on a fresh pseudo-terminal and returns whether
    /// ISIG is still set on that terminal once QEMU is up.
    private func terminalKeepsSignals(_ arguments: [String], socket: String) async throws -> Bool {
        // posix_openpt/ptsname are not imported into Swift; use the Linux ioctls.
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        #expect(master >= 0)
        defer { close(master) }
        var unlock: Int32 = 0
        var number: UInt32 = 0
        #expect(ioctl(master, 0x4004_5431, &unlock) == 0)  // TIOCSPTLCK = _IOW('T', 0x31, int)
        #expect(ioctl(master, 0x8004_5430, &number) == 0)  // TIOCGPTN = _IOR('T', 0x30, unsigned int)
        let slave = open("/dev/pts/\(number)", O_RDWR | O_NOCTTY | O_CLOEXEC)
        #expect(slave >= 0)
        defer { close(slave) }

        var before = termios()
        tcgetattr(slave, &before)
        #expect(before.c_lflag & tcflag_t(ISIG) != 0)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: qemuBinary)
        process.arguments = arguments
        process.standardInput = FileHandle(fileDescriptor: slave, closeOnDealloc: false)
        process.standardOutput = FileHandle(fileDescriptor: slave, closeOnDealloc: false)
        try process.run()
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        // QEMU sets the terminal up before it creates the QMP socket.
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: socket) && process.isRunning {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(FileManager.default.fileExists(atPath: socket))
        var after = termios()
        tcgetattr(slave, &after)
        return after.c_lflag & tcflag_t(ISIG) != 0
    }

    @Test func ctrlCOnTheConsoleIsNotASignalForQEMU() async throws {
        let directory = try TemporaryDirectory()
        let socket = directory.file("qmp.sock")
        let arguments = try QEMUConfiguration(
            accelerator: .tcg, memoryMiB: 64, disk: nil, qmpSocketPath: socket, extraArguments: ["-S"]
        ).arguments()
        #expect(try await terminalKeepsSignals(arguments, socket: socket) == false)
    }

    /// Control: with `signal=on` the same check sees ISIG kept, so the test above can fail.
    @Test func withSignalsOnTheTerminalWouldRaiseSIGINT() async throws {
        let directory = try TemporaryDirectory()
        let socket = directory.file("qmp.sock")
        let arguments = try QEMUConfiguration(
            accelerator: .tcg, memoryMiB: 64, disk: nil, qmpSocketPath: socket, extraArguments: ["-S"]
        ).arguments().map { $0 == "stdio,id=console,signal=off" ? "stdio,id=console,signal=on" : $0 }
        #expect(try await terminalKeepsSignals(arguments, socket: socket) == true)
    }
}
