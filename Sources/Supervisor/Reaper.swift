#if canImport(Glibc)
import Glibc
#endif
import CSupervisorShims
import NetworkTypes
import SystemPackage

/// Which children the supervisor waits for.
package enum ReapingScope: Sendable, Equatable {
    /// Every child of this process (`waitpid(-1)`): what PID 1, or a child
    /// subreaper, must do, since orphaned processes are re-parented to it.
    /// The supervisor then owns all children: nothing else in the process may wait
    /// for its own children.
    case allChildren
    /// Only the supervised child (`waitpid(pid)`): for processes that have other
    /// children waited for elsewhere, such as a test runner.
    case supervisedChildOnly

    /// `allChildren` when this process is PID 1 or a child subreaper, `supervisedChildOnly` otherwise.
    package static var automatic: ReapingScope {
        getpid() == 1 || kvml_is_child_subreaper() == 1 ? .allChildren : .supervisedChildOnly
    }
}

/// The supervised child's end, and what else was reaped meanwhile.
struct ReapReport: Sendable, Equatable {
    var termination: ChildTermination
    var orphansReaped: Int
}

/// Waits for children on a dedicated thread that blocks in waitid(2): no
/// SIGCHLD handler and no polling are needed, and a child that exits is reaped
/// at once whichever process it was.
enum Reaper {
    static func watch(
        _ child: SupervisedChild,
        scope: ReapingScope,
        onOrphan: @escaping @Sendable (pid_t, ChildTermination) -> Void,
        completion: @escaping @Sendable (Result<ReapReport, SupervisorError>) -> Void
    ) {
        let reap: @Sendable () -> Void = {
            var orphans = 0
            while true {
                // Observe an exit without reaping it (WNOWAIT), so the supervised
                // child can be marked gone before its pid is released.
                var info = siginfo_t()
                let idType = scope == .allChildren ? P_ALL : P_PID
                let observed = retryingOnInterrupt {
                    waitid(idType, id_t(scope == .allChildren ? 0 : child.pid), &info, WEXITED | WNOWAIT)
                }
                if observed < 0 {
                    completion(.failure(.waitFailed(reason: Errno.current.description)))
                    return
                }
                let exited = info._sifields._sigchld.si_pid
                if exited != child.pid {
                    var status: Int32 = 0
                    if waitpid(exited, &status, 0) == exited {
                        orphans += 1
                        onOrphan(exited, ChildTermination(waitStatus: status))
                    }
                    continue
                }
                guard let status = child.reap() else {
                    completion(.failure(.waitFailed(reason: Errno.current.description)))
                    return
                }
                if scope == .allChildren {
                    // Collect orphans that are already zombies before reporting.
                    var orphanStatus: Int32 = 0
                    while true {
                        let other = waitpid(-1, &orphanStatus, WNOHANG)
                        if other <= 0 { break }
                        orphans += 1
                        onOrphan(other, ChildTermination(waitStatus: orphanStatus))
                    }
                }
                completion(.success(ReapReport(termination: ChildTermination(waitStatus: status), orphansReaped: orphans)))
                return
            }
        }
        // No thread could be created: run inline rather than lose the work.
        if !startDetachedThread(named: "reaper", reap) { reap() }
    }

    /// Makes this process a child subreaper (PR_SET_CHILD_SUBREAPER), so orphans
    /// of its descendants come to it as they would to PID 1. A no-op for PID 1.
    static func becomeSubreaper() throws(SupervisorError) {
        if getpid() == 1 { return }
        guard kvml_set_child_subreaper() == 0 else {
            throw .subreaperFailed(errno: .current)
        }
    }
}
