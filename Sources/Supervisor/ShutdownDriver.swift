import Logging

/// The steps of a stop for one VM, as ``ShutdownDriver`` carries them out: a QEMU child of the
/// ``Supervisor`` or a libvirt domain.
package struct ShutdownSteps: Sendable {
    /// Presses the power button (again while the guest has not reacted, if the backend does so);
    /// runs in a task of its own, cancelled when `quit` starts. Throwing anything but
    /// `CancellationError` reports the step as failed, which moves the stop on at once.
    package var powerdown: @Sendable () async throws -> Void
    /// Makes the VM end now; a failure is the step's own to log or work around.
    package var quit: @Sendable () async -> Void
    /// Kills QEMU. A returned duration: if the VM is not seen to end within it, the driver reports
    /// ``ShutdownSequence/Phase/killed`` as a deadline (a backend that cannot reap QEMU itself gives up then).
    package var kill: @Sendable () -> Duration?

    package init(powerdown: @escaping @Sendable () async throws -> Void, quit: @escaping @Sendable () async -> Void,
                 kill: @escaping @Sendable () -> Duration?) {
        self.powerdown = powerdown
        self.quit = quit
        self.kill = kill
    }
}

/// The stop loop both backends share: it feeds stop requests, deadlines and failed steps to a
/// ``ShutdownSequence``, and carries out the actions it answers with — each step in a task of its
/// own, timers that come back through `deadline`, a failed power-button press through `failed`. The
/// backend keeps its own event stream and decides when the VM has ended; ``finish()`` cancels what
/// still runs.
package struct ShutdownDriver {
    package private(set) var sequence: ShutdownSequence
    private let steps: ShutdownSteps
    private let deadline: @Sendable (ShutdownSequence.Phase) -> Void
    private let failed: @Sendable (ShutdownSequence.Phase, String) -> Void
    private let waitingFor: String
    private let logger: Logger
    private var tasks: [Task<Void, Never>] = []
    private var powerdownTask: Task<Void, Never>?

    /// - Parameters:
    ///   - waitingFor: what a timeout waited for, for the log ("QEMU to exit").
    ///   - deadline: yields the backend's deadline event for a phase.
    ///   - failed: yields the backend's failed-step event.
    package init(policy: ShutdownPolicy, steps: ShutdownSteps, waitingFor: String, logger: Logger,
                 deadline: @escaping @Sendable (ShutdownSequence.Phase) -> Void,
                 failed: @escaping @Sendable (ShutdownSequence.Phase, String) -> Void) {
        sequence = ShutdownSequence(policy: policy)
        self.steps = steps
        self.waitingFor = waitingFor
        self.logger = logger
        self.deadline = deadline
        self.failed = failed
    }

    package mutating func stopRequested(_ request: StopRequest) {
        logger.info("stop requested", metadata: ["reason": "\(request)", "phase": "\(sequence.phase)"])
        perform(sequence.stopRequested(request))
    }

    package mutating func deadlineReached(_ phase: ShutdownSequence.Phase) {
        logger.notice("timed out waiting for \(waitingFor)", metadata: ["phase": "\(phase)"])
        perform(sequence.deadlineReached(phase))
    }

    package mutating func stepFailed(_ phase: ShutdownSequence.Phase, _ message: String) {
        logger.warning("stop step failed", metadata: ["phase": "\(phase)", "error": "\(message)"])
        perform(sequence.actionFailed(in: phase))
    }

    /// Cancels every step and timer still running.
    package func finish() {
        tasks.forEach { $0.cancel() }
    }

    private mutating func perform(_ actions: [ShutdownSequence.Action]) {
        for action in actions {
            switch action {
            case .powerdown:
                let (powerdown, failed) = (steps.powerdown, self.failed)
                let task = Task {
                    do {
                        try await powerdown()
                    } catch is CancellationError {
                        return
                    } catch {
                        failed(.poweringDown, "\(error)")
                    }
                }
                powerdownTask = task
                tasks.append(task)
            case .quit:
                // A repeating power-button press must not hold QMP (one client at a time) now.
                powerdownTask?.cancel()
                tasks.append(Task { [quit = steps.quit] in await quit() })
            case .kill:
                if let confirmation = steps.kill() {
                    tasks.append(timer(.killed, after: confirmation))
                }
            case let .startTimer(phase, delay):
                tasks.append(timer(phase, after: delay))
            }
        }
    }

    private func timer(_ phase: ShutdownSequence.Phase, after delay: Duration) -> Task<Void, Never> {
        Task { [deadline] in
            do {
                try await Task.sleep(for: delay)
                deadline(phase)
            } catch {}
        }
    }
}
