#if canImport(Glibc)
import Glibc
#endif
import CSupervisorShims
import NetworkTypes
import SystemPackage
import Synchronization

/// A request to stop the guest: a signal, a cancelled task, or a test.
package struct StopRequest: Sendable, Equatable, CustomStringConvertible {
    /// Human-readable cause, e.g. `SIGTERM`.
    package var reason: String
    /// The signal that caused it, if any.
    package var signal: Int32?

    package init(reason: String, signal: Int32? = nil) {
        self.reason = reason
        self.signal = signal
    }

    package static func signal(_ signal: Int32) -> StopRequest {
        StopRequest(reason: signalName(signal), signal: signal)
    }

    package var description: String { reason }
}

/// Turns SIGTERM and SIGINT into ``StopRequest``s.
///
/// PID 1 gets no default signal handlers (the kernel drops signals whose
/// disposition is SIG_DFL for a namespace's init), so a handler must be installed
/// or `docker stop` does nothing until its SIGKILL. The handler is a tiny C
/// function that writes the signal number to a pipe (the self-pipe trick); a
/// dedicated thread blocks on reading that pipe and feeds the stream.
///
/// That thread is where the signals are taken: it unblocks them for itself, and the
/// thread that installs them blocks them (and so every thread it starts afterwards).
/// A process can be started with them blocked — children of a program whose threads
/// block signals, as Foundation's `Process` in the test runner does — and kvm-launch's
/// main thread, which runs its executor (Sources/LauncherExecutor), would otherwise keep
/// them blocked too: nothing would take a SIGTERM. Blocked on the installing thread, a
/// stop signal never interrupts the system calls of the launcher's own work either.
package enum StopSignals {
    private static let installed = Mutex(false)

    /// Installs the handlers once per process and returns the stream of requests.
    ///
    /// A second SIGTERM/SIGINT yields a second request; the supervisor uses it to
    /// skip the rest of the current shutdown wait.
    package static func install(_ signals: [Int32] = [SIGTERM, SIGINT]) throws(SupervisorError) -> AsyncStream<StopRequest> {
        let alreadyInstalled = installed.withLock { value in
            defer { value = true }
            return value
        }
        guard !alreadyInstalled else { throw .signalsAlreadyInstalled }

        var ends: [Int32] = [-1, -1]
        guard kvml_make_signal_pipe(&ends) == 0 else {
            installed.withLock { $0 = false }
            throw .signalSetupFailed(errno: .current)
        }
        let (readEnd, writeEnd) = (ends[0], ends[1])

        let (stream, continuation) = AsyncStream.makeStream(of: StopRequest.self)
        let relay: @Sendable () -> Void = {
            setMask(SIG_UNBLOCK, signals)
            var byte: UInt8 = 0
            while true {
                let count = retryingOnInterrupt { read(readEnd, &byte, 1) }
                if count == 1 {
                    continuation.yield(.signal(Int32(byte)))
                } else {
                    continuation.finish()
                    return
                }
            }
        }
        // No thread could be created: run inline rather than lose the work.
        if !startDetachedThread(named: "stop-signals", relay) { relay() }

        let result = signals.withUnsafeBufferPointer {
            kvml_install_signal_pipe(writeEnd, $0.baseAddress, Int32($0.count))
        }
        guard result == 0 else { throw .signalSetupFailed(errno: .current) }
        setMask(SIG_BLOCK, signals)
        return stream
    }

    /// Blocks or unblocks `signals` for the calling thread (`how`: SIG_BLOCK or SIG_UNBLOCK).
    private static func setMask(_ how: Int32, _ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        pthread_sigmask(how, &set, nil)
    }
}
