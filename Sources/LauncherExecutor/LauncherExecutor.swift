@_spi(ExperimentalCustomExecutors) @_spi(ExperimentalScheduling) import _Concurrency

#if canImport(Glibc)
import Glibc
#endif

/// kvm-launch's executor for Swift concurrency: one thread (the one that calls ``run()``, the main
/// thread in the launcher) runs every job — the main actor's, the global executor's, a task's
/// that prefers this executor — in the order they arrive, and the jobs of `Task.sleep` when they
/// are due. The thread waits on a condition variable with no timeout when no sleep is pending, so
/// an idle launcher is never woken.
///
/// Why: on Linux the runtime's default executors are libdispatch's, whose worker pool arms a
/// one-second monitor timer the first time a worker runs and never disarms it. Installed as both
/// the main and the default executor (``LauncherExecutor/runMain(_:)``), this one leaves
/// libdispatch's thread pool unused for the whole life of the process.
///
/// One thread is enough for the launcher: its async code only awaits (the work that blocks — packet
/// receive loops, `waitid`, QMP — runs on dedicated threads that resume continuations), and a job
/// that blocks briefly in a system call only delays the others. Code that blocks this thread until
/// another job of the same executor has run would deadlock; nothing in kvm-launch does.
package final class LauncherExecutor: MainExecutor, TaskExecutor, SchedulingExecutor, @unchecked Sendable {
    // Everything below is guarded by `lock`, except `owner` (written before the first job runs).
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let changed: UnsafeMutablePointer<pthread_cond_t>
    private var ready: [UnownedJob] = []
    private var timers: [Timer] = []
    private var stopping = false
    private var sequence: UInt64 = 0
    private var owner: pthread_t?
    private let isMain: Bool

    /// A job waiting for its time, on CLOCK_MONOTONIC; `sequence` keeps equal deadlines in order.
    private struct Timer {
        var due: UInt64
        var sequence: UInt64
        var job: UnownedJob
    }

    /// - Parameter isMain: whether this executor is (about to be) the process's main executor.
    package init(isMain: Bool = false) {
        self.isMain = isMain
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_mutex_t())
        pthread_mutex_init(lock, nil)
        changed = .allocate(capacity: 1)
        changed.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(changed, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(lock)
        changed.deallocate()
        lock.deallocate()
    }

    // MARK: Enqueueing (any thread)

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pthread_mutex_lock(lock)
        ready.append(job)
        pthread_cond_signal(changed)
        pthread_mutex_unlock(lock)
    }

    /// `Task.sleep(for:)` and friends: `job` runs once `delay` has passed.
    package func enqueue<C: Clock>(_ job: consuming ExecutorJob, after delay: C.Duration, tolerance: C.Duration?, clock: C) {
        schedule(UnownedJob(job), after: Self.duration(delay, of: clock))
    }

    /// `Task.sleep(until:)`: `job` runs at `instant` of `clock` (measured from now, then kept on
    /// CLOCK_MONOTONIC, which is what the continuous and suspending clocks differ from only while the
    /// machine is suspended).
    package func enqueue<C: Clock>(_ job: consuming ExecutorJob, at instant: C.Instant, tolerance: C.Duration?, clock: C) {
        schedule(UnownedJob(job), after: Self.duration(clock.now.duration(to: instant), of: clock))
    }

    private static func duration<C: Clock>(_ duration: C.Duration, of clock: C) -> Duration {
        guard let duration = duration as? Duration else {
            // Every clock of the standard library measures in Duration; a clock that does not cannot be
            // waited for here, and running the job early would end a sleep before its time.
            preconditionFailure("LauncherExecutor cannot wait on \(C.self): its durations are not Swift.Duration")
        }
        return duration
    }

    private func schedule(_ job: UnownedJob, after delay: Duration) {
        let (seconds, attoseconds) = delay.components
        let nanoseconds = seconds < 0 || (seconds == 0 && attoseconds <= 0)
            ? 0 : UInt64(seconds) &* 1_000_000_000 &+ UInt64(max(0, attoseconds / 1_000_000_000))
        let due = Self.monotonicNow() &+ nanoseconds
        pthread_mutex_lock(lock)
        let timer = Timer(due: due, sequence: sequence, job: job)
        sequence &+= 1
        // Few timers are ever pending (the stop sequence's, a poll's): a sorted array is enough.
        let index = timers.firstIndex { $0.due > due } ?? timers.endIndex
        timers.insert(timer, at: index)
        // Only a new earliest deadline changes how long the loop waits.
        if index == 0 { pthread_cond_signal(changed) }
        pthread_mutex_unlock(lock)
    }

    // MARK: Running (the owner thread)

    /// Runs jobs on the calling thread until ``stop()``.
    package func run() throws {
        try runUntil { false }
    }

    /// Runs jobs on the calling thread until `condition` holds (checked after each batch of jobs)
    /// or ``stop()`` is called.
    package func runUntil(_ condition: () -> Bool) throws {
        owner = pthread_self()
        while !condition() {
            guard let batch = nextBatch() else { return }
            for job in batch {
                job.runSynchronously(on: asUnownedSerialExecutor())
            }
        }
    }

    /// Makes ``run()`` return after the jobs it is running now (or the next ``run()`` at once).
    package func stop() {
        pthread_mutex_lock(lock)
        stopping = true
        pthread_cond_signal(changed)
        pthread_mutex_unlock(lock)
    }

    /// Waits until a job is ready (moving due timers to the ready jobs) and takes every ready job;
    /// nil once stopped. Without a pending timer the wait has no timeout.
    private func nextBatch() -> [UnownedJob]? {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        while true {
            if stopping {
                stopping = false
                return nil
            }
            if let first = timers.first {
                let now = Self.monotonicNow()
                if first.due <= now {
                    let due = timers.prefix { $0.due <= now }
                    ready.append(contentsOf: due.map(\.job))
                    timers.removeFirst(due.count)
                }
            }
            if !ready.isEmpty {
                var batch: [UnownedJob] = []
                swap(&batch, &ready)
                return batch
            }
            if let first = timers.first {
                var until = timespec(tv_sec: Int(first.due / 1_000_000_000), tv_nsec: Int(first.due % 1_000_000_000))
                pthread_cond_timedwait(changed, lock, &until)
            } else {
                pthread_cond_wait(changed, lock)
            }
        }
    }

    private static func monotonicNow() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    /// How many delayed jobs wait for their time (a cancelled sleep's stays until its deadline).
    package var pendingDelayedJobs: Int {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return timers.count
    }

    // MARK: Isolation

    package var isMainExecutor: Bool { isMain }

    /// The executor's jobs run on the thread in ``run()``: code that claims this isolation elsewhere
    /// stops the program.
    package func checkIsolated() {
        guard let owner, pthread_equal(owner, pthread_self()) != 0 else {
            preconditionFailure("not on kvm-launch's executor thread")
        }
    }

    /// Whether the calling thread is the one running this executor's jobs.
    package var isCurrentThread: Bool {
        guard let owner else { return false }
        return pthread_equal(owner, pthread_self()) != 0
    }
}
