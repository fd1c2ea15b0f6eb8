/// How supervision ended.
package struct SupervisionResult: Sendable, Equatable, CustomStringConvertible {
    package enum Outcome: Sendable, Equatable {
        /// QEMU exited with status 0 before any forced step: the guest powered
        /// off, by itself or in answer to the ACPI power button.
        case poweredOff
        /// The guest did not power off within the timeout (or the stop was
        /// repeated); QEMU was told to quit.
        case quitAfterTimeout
        /// QEMU did not exit after `quit` either and was SIGKILLed.
        case killedAfterTimeout
        /// QEMU ended on its own with a failure status or a signal.
        case crashed
    }

    package var outcome: Outcome
    /// QEMU's wait status.
    package var termination: ChildTermination
    /// The stop request that started a graceful stop, if there was one.
    package var stopRequest: StopRequest?
    /// Other processes (orphans re-parented to this one) reaped meanwhile.
    package var orphansReaped: Int

    package init(outcome: Outcome, termination: ChildTermination, stopRequest: StopRequest?, orphansReaped: Int) {
        self.outcome = outcome
        self.termination = termination
        self.stopRequest = stopRequest
        self.orphansReaped = orphansReaped
    }

    /// Only a guest that powered off counts as success.
    package var succeeded: Bool { outcome == .poweredOff }

    /// A process exit status for the launcher: 0 when the guest powered off, 2
    /// when QEMU had to be told to quit, 137 (128 + SIGKILL) when it was killed,
    /// and QEMU's own status (128 + signal for a signal) when it crashed.
    package var exitCode: Int32 {
        switch outcome {
        case .poweredOff: 0
        case .quitAfterTimeout: 2
        case .killedAfterTimeout: 128 + 9
        case .crashed:
            switch termination {
            case let .exited(code): code == 0 ? 1 : code
            case let .signaled(signal, _): 128 + signal
            }
        }
    }

    package var description: String {
        let stop = stopRequest.map { " after \($0)" } ?? ""
        switch outcome {
        case .poweredOff:
            return "the guest powered off\(stop); QEMU \(termination)"
        case .quitAfterTimeout:
            return "the guest did not power off in time\(stop); QEMU was told to quit and \(termination)"
        case .killedAfterTimeout:
            return "neither the guest nor QEMU stopped in time\(stop); QEMU was killed (\(termination))"
        case .crashed:
            return "QEMU \(termination) without the guest powering off: see QEMU's messages above"
        }
    }
}
