import Foundation
import TestSupport
import Testing
import QEMU
import SystemPackage

@Suite struct QMPClientTests {
    /// An abstract socket (`@NAME`): QEMU binds it with `abstract=on`, the client reaches it, no
    /// file is made, and once QEMU is gone nothing listens there any more.
    @Test func reachesARealQEMUOnAnAbstractSocket() async throws {
        let directory = try TemporaryDirectory()
        let name = "@kvm-launch-test/sharedrun/qmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(!QMPClient.isListening(at: name))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: qemuBinary)
        process.arguments = try QEMUConfiguration(accelerator: .tcg, memoryMiB: 64, disk: nil, qmpSocketPath: name,
                                                  extraArguments: ["-S"]).arguments()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.currentDirectoryURL = URL(fileURLWithPath: directory.path)
        try process.run()
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        }
        for _ in 0..<200 where !QMPClient.isListening(at: name) && process.isRunning {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(QMPClient.isListening(at: name))
        #expect(try await QMPClient.queryStatus(socketPath: name).status == "prelaunch")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty, "no socket file anywhere")
        let client = try await QMPClient.connect(socketPath: name)
        try await client.quit()
        process.waitUntilExit()
        #expect(!QMPClient.isListening(at: name))
        await #expect(throws: QMPError.self) { try await QMPClient.queryStatus(socketPath: name) }
    }

    @Test func talksToARealQEMU() async throws {
        let directory = try TemporaryDirectory()
        let qemu = try await RunningQEMU(in: directory)

        // QEMU serves one QMP client at a time: the one-shot status query used by
        // `kvm-launch status` runs while no other client is connected.
        #expect(try await QMPClient.queryStatus(socketPath: qemu.socketPath).running == false)

        let client = try await QMPClient.connect(socketPath: qemu.socketPath)
        #expect(client.greeting.version.split(separator: ".").count == 3)
        #expect(client.greeting.version.split(separator: ".").allSatisfy { Int($0) != nil })

        let paused = try await client.queryStatus()
        #expect(!paused.running)
        #expect(["prelaunch", "paused"].contains(paused.status))

        _ = try await client.execute("cont")
        let running = try await client.queryStatus()
        #expect(running == QMPStatus(running: true, status: "running"))

        try await client.systemPowerdown()
        // QEMU acted on it: it reports the power button press as a POWERDOWN event (collected while
        // later commands run; bounded).
        for _ in 0..<20 where !client.events.contains(where: { $0.name == "POWERDOWN" }) {
            _ = try await client.queryStatus()
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(client.events.contains { $0.name == "POWERDOWN" }, "\(client.events)")

        let vnc = try await client.execute("query-vnc")
        #expect(vnc["enabled"] == .bool(true))

        await #expect(throws: QMPError.self) { try await client.execute("no-such-command") }
        do {
            _ = try await client.execute("no-such-command")
        } catch let error {
            guard case let .commandFailed(command, errorClass, _) = error else { throw error }
            #expect(command == "no-such-command")
            #expect(errorClass == "CommandNotFound")
        }

        try await client.quit()
        #expect(try await qemu.waitForExit() == 0)
        #expect(client.events.contains { $0.name == "SHUTDOWN" })
        await #expect(throws: QMPError.connectionClosed) { try await client.queryStatus() }
    }

    @Test func argumentsAreSentAsJSON() async throws {
        let directory = try TemporaryDirectory()
        let qemu = try await RunningQEMU(in: directory)
        let client = try await QMPClient.connect(socketPath: qemu.socketPath)
        defer { client.close() }
        let answer = try await client.execute("human-monitor-command", arguments: ["command-line": .string("info name")])
        #expect(answer.stringValue != nil)
        let machine = try await client.execute("qom-get", arguments: ["path": .string("/machine"), "property": .string("type")])
        #expect(machine.stringValue?.contains("q35") == true)
        try await client.quit()
        #expect(try await qemu.waitForExit() == 0)
    }

    /// What goes over the wire, read by a QMP server in this test: the capabilities handshake, then
    /// exactly `system_powerdown` and `quit` with no arguments.
    @Test func theCommandsSentAreTheOnesAskedFor() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("fake.sock")
        let server = try FakeQMPServer(path: path)
        let client = try await QMPClient.connect(socketPath: path, timeout: .seconds(5))
        try await client.systemPowerdown()
        try await client.quit()
        client.close()
        let received = try server.finish()
        #expect(received.map { $0["execute"] as? String } == ["qmp_capabilities", "system_powerdown", "quit"])
        #expect(received.allSatisfy { $0["arguments"] == nil })
    }

    @Test func connectingWithoutQEMUFails() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("absent.sock")
        await #expect(throws: QMPError.connectFailed(path: path, errno: .noSuchFileOrDirectory)) {
            try await QMPClient.queryStatus(socketPath: path)
        }
        let long = "/tmp/" + String(repeating: "x", count: 120)
        await #expect(throws: QMPError.socketPathTooLong(long)) { try await QMPClient.connect(socketPath: long) }
    }

    @Test func aSilentServerTimesOut() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("silent.sock")
        // A listening socket that never greets: connect succeeds, the greeting never comes.
        let server = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(server) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(server, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        #expect(listen(server, 1) == 0)
        await #expect(throws: QMPError.timedOut) {
            try await QMPClient.connect(socketPath: path, timeout: .milliseconds(200))
        }
    }

    @Test func valuesDecodeAndPrint() throws {
        let json = #"{"a": [1, 2.5, "x", true, null], "b": {"c": -3}}"#
        let value = try JSONDecoder().decode(QMPValue.self, from: Data(json.utf8))
        #expect(value["a"] == .array([.int(1), .double(2.5), .string("x"), .bool(true), .null]))
        #expect(value["b"]?["c"]?.intValue == -3)
        #expect(value.description == #"{"a": [1, 2.5, "x", true, null], "b": {"c": -3}}"#)
        let encoded = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(QMPValue.self, from: encoded) == value)
    }

    @Test func errorDescriptionsAreOneLine() {
        let errors: [QMPError] = [
            .socketPathTooLong("/x"), .connectFailed(path: "/x", errno: .connectionRefused), .timedOut, .connectionClosed,
            .malformedMessage("{"), .unexpectedGreeting("{}"), .commandFailed(command: "c", errorClass: "E", message: "m"),
        ]
        for error in errors { #expect(!error.description.contains("\n")) }
    }
}

/// A QMP server on a unix socket, serving one client on its own thread: greets, answers every command
/// with an empty return, and records the commands it received (as decoded JSON objects).
final class FakeQMPServer: @unchecked Sendable {  // `received` is read only after the thread finished
    private let listener: Int32
    private var received: [[String: Any]] = []
    private let done = DispatchSemaphore(value: 0)

    init(path: String) throws {
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 1) == 0 else { throw FixtureFailure("cannot listen on \(path)") }
        Thread.detachNewThread { [self] in serve() }
    }

    private func serve() {
        defer { done.signal() }
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { return }
        defer { close(connection) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        send(connection, #"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}"#)
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(connection, &chunk, chunk.count)
            if count <= 0 { return }
            buffer += chunk[0..<count]
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Data(buffer[..<newline])
                buffer.removeSubrange(...newline)
                guard let object = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] else { continue }
                received.append(object)
                send(connection, #"{"return": {}}"#)
            }
        }
    }

    private func send(_ connection: Int32, _ text: String) {
        let bytes = Array((text + "\r\n").utf8)
        _ = bytes.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
    }

    /// Waits (at most 10 s) for the client to hang up and returns what it sent.
    func finish() throws -> [[String: Any]] {
        guard done.wait(timeout: .now() + 10) == .success else { throw FixtureFailure("the client did not hang up") }
        close(listener)
        return received
    }
}
