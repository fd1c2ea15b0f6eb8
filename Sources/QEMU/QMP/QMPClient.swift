#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NetworkTypes
import Synchronization
import SystemPackage

/// A QMP failure. Each description is one line that says what to do.
package enum QMPError: Error, Equatable, CustomStringConvertible {
    case socketPathTooLong(String)
    case connectFailed(path: String, errno: Errno)
    case timedOut
    case connectionClosed
    case malformedMessage(String)
    case unexpectedGreeting(String)
    case commandFailed(command: String, errorClass: String, message: String)

    package var description: String {
        switch self {
        case let .socketPathTooLong(path):
            "QMP socket path '\(path)' is longer than a unix socket path may be (107 bytes): choose a shorter path"
        case let .connectFailed(path, reason):
            "cannot connect to QMP socket \(path) (\(reason)): QEMU is not running or was started with another socket path"
        case .timedOut:
            "QEMU did not answer on its QMP socket in time: it may be hung; stop the container to kill it"
        case .connectionClosed:
            "QEMU closed its QMP connection: it is exiting or has exited"
        case let .malformedMessage(text):
            "QEMU sent a QMP message that is not valid JSON (\(text.prefix(80))): check that the socket belongs to QEMU"
        case let .unexpectedGreeting(text):
            "the socket did not greet like QMP (\(text.prefix(80))): check that the path is QEMU's QMP socket"
        case let .commandFailed(command, errorClass, message):
            "QMP command \(command) failed (\(errorClass): \(message))"
        }
    }
}

/// The server greeting.
package struct QMPGreeting: Sendable, Equatable {
    /// e.g. `7.2.22`.
    package var version: String
    package var capabilities: [String]
}

/// An asynchronous event QEMU sent (SHUTDOWN, POWERDOWN, STOP, ...).
package struct QMPEvent: Sendable, Equatable {
    package var name: String
    package var data: QMPValue?
}

/// The answer of `query-status`.
package struct QMPStatus: Sendable, Equatable, CustomStringConvertible {
    /// Whether the guest's vCPUs are running.
    package var running: Bool
    /// QEMU's run state: `running`, `paused`, `prelaunch`, `shutdown`, `guest-panicked`, ...
    package var status: String

    package init(running: Bool, status: String) {
        self.running = running
        self.status = status
    }

    package var description: String { status }
}

/// A client for QEMU's QMP control socket.
///
/// ``connect(socketPath:timeout:)`` reads the greeting and negotiates capabilities,
/// so a returned client is ready for commands. Commands run one at a time; events
/// that arrive meanwhile are kept (see ``events``). Socket I/O is blocking with
/// `timeout` per read or write, done on a thread of its own per call (commands are rare:
/// health checks, shutdown), never on the Swift concurrency pool.
package final class QMPClient: Sendable {
    package let greeting: QMPGreeting
    private let connection: Mutex<Connection>

    private init(greeting: QMPGreeting, connection: sending Connection) {
        self.greeting = greeting
        self.connection = Mutex(connection)
    }

    /// Connects, reads the greeting and sends `qmp_capabilities`.
    package static func connect(socketPath: String, timeout: Duration = .seconds(5)) async throws(QMPError) -> QMPClient {
        let result: Result<QMPClient, QMPError> = await onOwnThread {
            Result { () throws(QMPError) -> QMPClient in
                let connection = Connection(socket: try UnixStreamSocket(connectingTo: socketPath, timeout: timeout))
                let greeting = try connection.readGreeting()
                _ = try connection.execute("qmp_capabilities", arguments: nil)
                return QMPClient(greeting: greeting, connection: connection)
            }
        }
        return try result.get()
    }

    /// One-shot `query-status`, for health checks (`kvm-launch status`).
    package static func queryStatus(socketPath: String, timeout: Duration = .seconds(2)) async throws(QMPError) -> QMPStatus {
        let client = try await connect(socketPath: socketPath, timeout: timeout)
        defer { client.close() }
        return try await client.queryStatus()
    }

    /// Runs `command` and returns its `return` value.
    package func execute(_ command: String, arguments: [String: QMPValue]? = nil) async throws(QMPError) -> QMPValue {
        try await perform { connection throws(QMPError) in try connection.execute(command, arguments: arguments) }
    }

    /// `query-status`.
    package func queryStatus() async throws(QMPError) -> QMPStatus {
        let value = try await execute("query-status")
        guard let running = value["running"]?.boolValue, let status = value["status"]?.stringValue else {
            throw .malformedMessage("query-status returned \(value)")
        }
        return QMPStatus(running: running, status: status)
    }

    /// `system_powerdown`: presses the guest's ACPI power button. Returns at once;
    /// the guest decides whether and when to shut down.
    package func systemPowerdown() async throws(QMPError) {
        _ = try await execute("system_powerdown")
    }

    /// `quit`: QEMU exits at once (the guest is not shut down cleanly).
    /// QEMU may close the socket before its reply arrives; that counts as success.
    package func quit() async throws(QMPError) {
        do {
            _ = try await execute("quit")
        } catch .connectionClosed {
            return
        }
    }

    /// Events received so far, oldest first.
    package var events: [QMPEvent] {
        connection.withLock { $0.events }
    }

    /// Closes the socket; later commands fail with ``QMPError/connectionClosed``.
    package func close() {
        connection.withLock { $0.close() }
    }

    private func perform<T: Sendable>(
        _ body: @escaping @Sendable (Connection) throws(QMPError) -> T
    ) async throws(QMPError) -> T {
        let result: Result<T, QMPError> = await Self.onOwnThread {
            self.connection.withLock { connection in
                Result { () throws(QMPError) -> T in try body(connection) }
            }
        }
        return try result.get()
    }

    /// Runs blocking socket work on a thread of its own and returns its result.
    private static func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let run: @Sendable () -> Void = { continuation.resume(returning: work()) }
            if !startDetachedThread(named: "qmp", run) { run() }
        }
    }
}

/// The connection state; only touched under ``QMPClient``'s mutex.
private final class Connection {
    private var socket: UnixStreamSocket?
    private var buffer: [UInt8] = []
    private var nextID = 1
    private(set) var events: [QMPEvent] = []

    init(socket: UnixStreamSocket) { self.socket = socket }

    func close() { socket = nil }

    func readGreeting() throws(QMPError) -> QMPGreeting {
        let message = try readMessage()
        guard let qmp = message["QMP"] else { throw .unexpectedGreeting(message.description) }
        let version = qmp["version"]?["qemu"]
        let parts = ["major", "minor", "micro"].map { version?[$0]?.intValue.map(String.init) ?? "?" }
        var capabilities: [String] = []
        if case let .array(values)? = qmp["capabilities"] {
            capabilities = values.compactMap(\.stringValue)
        }
        return QMPGreeting(version: parts.joined(separator: "."), capabilities: capabilities)
    }

    func execute(_ command: String, arguments: [String: QMPValue]?) throws(QMPError) -> QMPValue {
        guard let socket else { throw .connectionClosed }
        let id = nextID
        nextID += 1
        var request: [String: QMPValue] = ["execute": .string(command), "id": .int(Int64(id))]
        if let arguments { request["arguments"] = .object(arguments) }
        let encoded: Data
        do {
            encoded = try JSONEncoder().encode(QMPValue.object(request))
        } catch {
            throw .malformedMessage("cannot encode \(command): \(error)")
        }
        try socket.send(Array(encoded) + [UInt8(ascii: "\n")])

        while true {
            let message = try readMessage()
            if let name = message["event"]?.stringValue {
                events.append(QMPEvent(name: name, data: message["data"]))
                continue
            }
            if let responseID = message["id"], responseID != .int(Int64(id)) { continue }
            if let value = message["return"] { return value }
            if let error = message["error"] {
                throw .commandFailed(
                    command: command,
                    errorClass: error["class"]?.stringValue ?? "GenericError",
                    message: error["desc"]?.stringValue ?? "\(error)"
                )
            }
            throw .malformedMessage(message.description)
        }
    }

    private func readMessage() throws(QMPError) -> QMPValue {
        guard let socket else { throw .connectionClosed }
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
                do {
                    return try JSONDecoder().decode(QMPValue.self, from: Data(line))
                } catch {
                    throw .malformedMessage(String(decoding: line, as: UTF8.self))
                }
            }
            let chunk = try socket.receive()
            if chunk.isEmpty {
                self.socket = nil
                throw .connectionClosed
            }
            buffer += chunk
        }
    }
}
