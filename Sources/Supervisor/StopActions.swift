#if canImport(Glibc)
import Glibc
#endif
import QEMU

/// How the supervisor asks the child to stop: first gently (power down the
/// guest), then firmly (quit QEMU). SIGKILL, the last step, is the supervisor's own.
package struct StopActions: Sendable {
    /// Starts a graceful stop; returns once the request was delivered.
    package var powerdown: @Sendable (_ child: SupervisedChild) async throws -> Void
    /// Tells the child to exit now. If it throws, the supervisor sends SIGTERM instead.
    package var quit: @Sendable (_ child: SupervisedChild) async throws -> Void

    package init(
        powerdown: @escaping @Sendable (_ child: SupervisedChild) async throws -> Void,
        quit: @escaping @Sendable (_ child: SupervisedChild) async throws -> Void
    ) {
        self.powerdown = powerdown
        self.quit = quit
    }

    /// QMP `system_powerdown`, then QMP `quit`, over the socket at `socketPath`.
    ///
    /// The power button is pressed again every `repeatEvery` until the supervisor moves on: a guest
    /// still booting loses a press that comes before its ACPI daemon runs (the kernel drops the
    /// pending event), and a stop during early boot must still end in a clean power-off. The QMP
    /// connection is closed between presses, since QEMU serves one QMP client at a time.
    package static func qmp(socketPath: String, timeout: Duration = .seconds(5), repeatEvery: Duration = .seconds(2),
                           startupGrace: Duration = .seconds(10)) -> StopActions {
        StopActions(
            powerdown: { _ in
                // Until the supervisor moves on (it cancels this task). Before the first press lands,
                // only "QEMU does not listen yet" (a stop right after QEMU started) is retried, for at
                // most `startupGrace`; any other failure is reported, so a hung QEMU moves on to `quit`.
                // After a press landed, later failures are QEMU exiting and are not errors.
                let clock = ContinuousClock()
                let started = clock.now
                var landed = false
                while true {
                    do {
                        let client = try await QMPClient.connect(socketPath: socketPath, timeout: timeout)
                        defer { client.close() }
                        try await client.systemPowerdown()
                        landed = true
                    } catch let error as QMPError {
                        guard !landed else { try await Task.sleep(for: repeatEvery); continue }
                        guard case .connectFailed = error, clock.now - started < startupGrace else { throw error }
                        try await Task.sleep(for: .milliseconds(200))
                        continue
                    }
                    try await Task.sleep(for: repeatEvery)
                }
            },
            quit: { _ in
                let client = try await QMPClient.connect(socketPath: socketPath, timeout: timeout)
                defer { client.close() }
                try await client.quit()
            }
        )
    }

    /// Sends `powerdown` then `quit` as signals: for children that are not QEMU.
    package static func signals(powerdown: Int32 = SIGTERM, quit: Int32 = SIGTERM) -> StopActions {
        StopActions(
            powerdown: { child in child.signal(powerdown) },
            quit: { child in child.signal(quit) }
        )
    }
}
