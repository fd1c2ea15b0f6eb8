#if canImport(Glibc)
import Glibc
#endif
import QEMU

/// How the supervisor asks the child to stop: first gently (power down the
/// guest), then firmly (quit QEMU). SIGKILL, the last step, is the supervisor's own.
public struct StopActions: Sendable {
    /// Starts a graceful stop; returns once the request was delivered.
    public var powerdown: @Sendable (_ child: SupervisedChild) async throws -> Void
    /// Tells the child to exit now. If it throws, the supervisor sends SIGTERM instead.
    public var quit: @Sendable (_ child: SupervisedChild) async throws -> Void

    public init(
        powerdown: @escaping @Sendable (_ child: SupervisedChild) async throws -> Void,
        quit: @escaping @Sendable (_ child: SupervisedChild) async throws -> Void
    ) {
        self.powerdown = powerdown
        self.quit = quit
    }

    /// QMP `system_powerdown`, then QMP `quit`, over the socket at `socketPath`.
    public static func qmp(socketPath: String, timeout: Duration = .seconds(5)) -> StopActions {
        StopActions(
            powerdown: { _ in
                let client = try await QMPClient.connect(socketPath: socketPath, timeout: timeout)
                defer { client.close() }
                try await client.systemPowerdown()
            },
            quit: { _ in
                let client = try await QMPClient.connect(socketPath: socketPath, timeout: timeout)
                defer { client.close() }
                try await client.quit()
            }
        )
    }

    /// Sends `powerdown` then `quit` as signals: for children that are not QEMU.
    public static func signals(powerdown: Int32 = SIGTERM, quit: Int32 = SIGTERM) -> StopActions {
        StopActions(
            powerdown: { child in child.signal(powerdown) },
            quit: { child in child.signal(quit) }
        )
    }
}
