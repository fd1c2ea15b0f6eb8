#if canImport(Glibc)
import Glibc
#endif
import NetworkTypes

/// `KVM_LAUNCH_TEST_KILL_AFTER_STEP=N`: the launcher dies by SIGKILL right after attach step N
/// (`0`: right after the recovery of what an earlier run left, before the first attach step, so a
/// test can compare the recovered namespace with the original one).
///
/// A fault-injection point for the restart tests (a SIGKILL at an exact moment cannot be produced
/// from outside); unset in any real deployment.
///
/// A process that is PID 1 of its PID namespace cannot SIGKILL itself: the kernel drops signals
/// sent to a namespace's init from inside it unless it handles them, and SIGKILL cannot be
/// handled. Such a launcher (the shape of every container) writes
/// ``FaultInjection/requestLine(step:)`` to standard error and waits, doing nothing further, for
/// the test to SIGKILL it from outside the namespace. Anywhere else it kills itself. When no kill
/// arrives within ``FaultInjection/waitForOutsideKill`` seconds it exits with
/// ``FaultInjection/nobodyKilledStatus``, so a test that failed to kill sees a plain exit, never a
/// launch that carried on.
enum FaultInjection {
    static let variable = "KVM_LAUNCH_TEST_KILL_AFTER_STEP"
    static let waitForOutsideKill: UInt32 = 60
    static let nobodyKilledStatus: Int32 = 125

    /// The line a PID 1 writes to standard error when it waits to be killed from outside.
    static func requestLine(step: Int) -> String {
        "kvm-launch: fault injection: after attach step \(step), waiting for SIGKILL from outside the PID namespace"
    }

    /// The attacher's after-step hook for `environment`, or nil when the variable is unset.
    static func hook(_ environment: [String: String]) -> ((Int) -> Void)? {
        guard let text = environment[variable], let step = Int(text) else { return nil }
        return { done in if done == step { die(afterStep: step) } }
    }

    static func die(afterStep step: Int) -> Never {
        if getpid() != 1 { kill(getpid(), SIGKILL) }
        writeToStandardError(requestLine(step: step) + "\n")
        var left = waitForOutsideKill
        while left > 0 { left = sleep(left) }
        writeToStandardError("kvm-launch: fault injection: nobody killed kvm-launch after attach step \(step) within \(waitForOutsideKill) s\n")
        _exit(nobodyKilledStatus)
    }
}
