#if canImport(Glibc)
import Glibc
#endif
import NetworkTypes
import Synchronization

/// The running child, for sending it signals safely.
///
/// A pid is only safe to signal until it is reaped: after that the kernel may give
/// the number to another process. The reaper marks the child as gone under the
/// same lock that ``signal(_:)`` takes, *before* it reaps it (the exit is first
/// observed with `waitid(WNOWAIT)`), so a signal never reaches a stranger.
package final class SupervisedChild: Sendable {
    package let pid: pid_t
    private let reaped = Mutex(false)

    init(pid: pid_t) { self.pid = pid }

    /// Sends `signal` unless the child has already been reaped.
    /// - Returns: whether the signal was sent.
    @discardableResult
    package func signal(_ signal: Int32) -> Bool {
        reaped.withLock { reaped in
            guard !reaped else { return false }
            return kill(pid, signal) == 0
        }
    }

    /// Whether the child has been reaped.
    package var hasExited: Bool { reaped.withLock { $0 } }

    /// Reaps the (already exited) child while holding the signal lock.
    func reap() -> Int32? {
        reaped.withLock { reaped in
            var status: Int32 = 0
            while true {
                let result = retryingOnInterrupt { waitpid(pid, &status, 0) }
                if result == pid {
                    reaped = true
                    return status
                }
                return nil
            }
        }
    }
}
