import NetworkTypes

/// How long each step of a graceful stop may take.
///
/// The whole sequence can take up to `powerdownTimeout + quitTimeout` plus the
/// time to kill QEMU. The container runtime SIGKILLs PID 1 when its own grace
/// period ends (`docker stop -t`, default 10 s; Kubernetes
/// `terminationGracePeriodSeconds`, default 30 s), so keep this sum a few seconds
/// below that period, leaving time for QEMU to exit and the network to be restored.
package struct ShutdownPolicy: Sendable, Equatable {
    /// 20 s: fits Kubernetes' default 30 s grace period with room for quit and cleanup.
    package static let defaultPowerdownTimeout: Duration = .seconds(LaunchDefaults.shutdownTimeoutSeconds)
    /// 5 s for QEMU to act on `quit` before SIGKILL.
    package static let defaultQuitTimeout: Duration = .seconds(5)

    /// How long the guest gets to shut down after the ACPI power button press.
    package var powerdownTimeout: Duration
    /// How long QEMU gets to exit after `quit` before it is killed.
    package var quitTimeout: Duration

    package init(
        powerdownTimeout: Duration = ShutdownPolicy.defaultPowerdownTimeout,
        quitTimeout: Duration = ShutdownPolicy.defaultQuitTimeout
    ) {
        self.powerdownTimeout = powerdownTimeout
        self.quitTimeout = quitTimeout
    }
}

/// The pure state machine behind a graceful stop:
/// running → (stop) → powering down → (timeout, failure or another stop) →
/// quitting → (timeout or another stop) → killed.
///
/// It only says what to do next; ``Supervisor`` performs the actions and feeds
/// events back.
package struct ShutdownSequence: Sendable, Equatable {
    package enum Phase: Sendable, Equatable {
        case running, poweringDown, quitting, killed
    }

    package enum Action: Sendable, Equatable {
        /// Ask the guest to power off (QMP `system_powerdown`).
        case powerdown
        /// Tell QEMU to exit (QMP `quit`).
        case quit
        /// SIGKILL QEMU.
        case kill
        /// Report ``ShutdownSequence/deadlineReached(_:)`` for `phase` after `after`.
        case startTimer(Phase, after: Duration)
    }

    package let policy: ShutdownPolicy
    package private(set) var phase: Phase = .running
    /// The request that started the sequence.
    package private(set) var firstRequest: StopRequest?

    package init(policy: ShutdownPolicy) {
        self.policy = policy
    }

    package mutating func stopRequested(_ request: StopRequest) -> [Action] {
        if firstRequest == nil { firstRequest = request }
        return advance()
    }

    /// A timer started for `phase` fired; stale timers are ignored.
    package mutating func deadlineReached(_ phase: Phase) -> [Action] {
        guard phase == self.phase else { return [] }
        return advance()
    }

    /// The action of `phase` could not be carried out (e.g. QMP unreachable):
    /// waiting out its timeout would be pointless.
    package mutating func actionFailed(in phase: Phase) -> [Action] {
        guard phase == self.phase else { return [] }
        return advance()
    }

    /// Classifies how the child ended, given the phase it ended in.
    package func outcome(for termination: ChildTermination) -> SupervisionResult.Outcome {
        switch phase {
        case .running, .poweringDown:
            termination == .exited(0) ? .poweredOff : .crashed
        case .quitting:
            .quitAfterTimeout
        case .killed:
            .killedAfterTimeout
        }
    }

    private mutating func advance() -> [Action] {
        switch phase {
        case .running:
            phase = .poweringDown
            return [.powerdown, .startTimer(.poweringDown, after: policy.powerdownTimeout)]
        case .poweringDown:
            phase = .quitting
            return [.quit, .startTimer(.quitting, after: policy.quitTimeout)]
        case .quitting:
            phase = .killed
            return [.kill]
        case .killed:
            return []
        }
    }
}
