import Dispatch
import LauncherExecutor
import NetworkTypes
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// kvm-launch's executor on a thread of its own (the test process keeps libdispatch's executors as its
/// default): tasks that prefer it, actors on it, its sleeps, cancellation and stop. That the launcher
/// itself runs on it and never starts libdispatch's threads is `IdleEndToEndTests`.
@Suite(.timeLimit(.minutes(1))) struct LauncherExecutorTests {
    /// A ``LauncherExecutor`` running on a detached thread for one test.
    final class Running: Sendable {
        let executor = LauncherExecutor()
        private let ended = DispatchSemaphore(value: 0)

        init() {
            let (executor, ended) = (executor, ended)
            let started = startDetachedThread(named: "test-executor") {
                try? executor.run()
                ended.signal()
            }
            precondition(started, "cannot start the executor's thread")
        }

        /// Stops the executor; true once its thread has left `run()` (waits at most 30 s).
        func stop() -> Bool {
            executor.stop()
            return ended.wait(timeout: .now() + 30) == .success
        }
    }

    /// The task's value; cancelling the waiting test (its time limit) cancels the task too, so a sleep that
    /// never ends fails the test instead of hanging the run.
    static func value<T: Sendable>(of task: Task<T, Never>) async -> T {
        await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
    }

    @Test func everyJobOfAPreferringTaskRunsOnTheExecutorsThread() async throws {
        let running = Running()
        let executor = running.executor
        #expect(!executor.isCurrentThread, "the test's own task runs elsewhere")
        let seen = await Self.value(of: Task(executorPreference: executor) { () async -> [String: Bool] in
            var seen = ["task": executor.isCurrentThread]
            let children = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<4 { group.addTask { executor.isCurrentThread } }
                return await group.reduce(true) { $0 && $1 }
            }
            seen["task group children"] = children
            async let child = executor.isCurrentThread
            seen["async let"] = await child
            // Resumed from a thread of its own, as the reaper and the responders do.
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                _ = startDetachedThread(named: "test-resumer") { continuation.resume() }
            }
            seen["after a continuation"] = executor.isCurrentThread
            try? await Task.sleep(for: .milliseconds(1))
            seen["after a sleep"] = executor.isCurrentThread
            let (stream, sink) = AsyncStream.makeStream(of: Int.self)
            _ = startDetachedThread(named: "test-yielder") { sink.yield(1); sink.finish() }
            for await _ in stream {}
            seen["after an AsyncStream"] = executor.isCurrentThread
            return seen
        })
        #expect(seen.count == 6)
        #expect(seen.filter { !$0.value }.keys.sorted() == [], "on another thread")
        #expect(running.stop())
    }

    actor Counter {
        let executor: LauncherExecutor
        var count = 0
        init(on executor: LauncherExecutor) { self.executor = executor }
        nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
        func increment() -> Bool {
            count += 1
            return executor.isCurrentThread
        }
    }

    @Test func anActorOnTheExecutorRunsOnItsThread() async {
        let running = Running()
        let counter = Counter(on: running.executor)
        var everyCallOnIt = true
        for _ in 0..<10 { everyCallOnIt = await counter.increment() && everyCallOnIt }
        #expect(everyCallOnIt)
        #expect(await counter.count == 10)
        #expect(running.stop())
    }

    /// The deadlines are fixed instants, so the order does not depend on how fast the sleeps start.
    @Test func sleepsEndInDeadlineOrder() async {
        let running = Running()
        let executor = running.executor
        let ended = await Self.value(of: Task(executorPreference: executor) { () async -> [(offset: Int, slept: Bool)] in
            let start = ContinuousClock.now
            return await withTaskGroup(of: (offset: Int, slept: Bool).self) { group in
                for offset in [300, 100, 200, 0] {
                    group.addTask {
                        do {
                            try await Task.sleep(until: start + .milliseconds(offset), clock: .continuous)
                            return (offset, true)
                        } catch {
                            return (offset, false)
                        }
                    }
                }
                var ended: [(offset: Int, slept: Bool)] = []
                for await sleep in group { ended.append(sleep) }
                return ended
            }
        })
        #expect(ended.map(\.offset) == [0, 100, 200, 300])
        #expect(ended.allSatisfy { $0.slept }, "every sleep ran to its deadline (none was cancelled)")
        #expect(running.stop())
    }

    /// A sleep is this executor's delayed job (not libdispatch's timer), and cancelling the task ends it
    /// at once: the stop sequence cancels its deadlines and the repeating power-button press that way.
    @Test func aSleepWaitsHereAndCancellationEndsIt() async throws {
        let running = Running()
        let executor = running.executor
        let sleeper = Task(executorPreference: executor) { () async -> Bool in
            do {
                try await Task.sleep(for: .seconds(3600))
                return false
            } catch {
                return error is CancellationError
            }
        }
        // Until the sleep is queued (bounded: 30 s).
        var queued = false
        for _ in 0..<3000 where !queued {
            queued = executor.pendingDelayedJobs == 1
            if !queued { usleep(10_000) }
        }
        try #require(queued, "the hour-long sleep never reached the executor's timers")
        sleeper.cancel()
        #expect(await Self.value(of: sleeper), "the sleep ended by cancellation")
        #expect(running.stop())
    }

    @Test func aStopBeforeRunMakesRunReturnAtOnce() {
        let executor = LauncherExecutor()
        executor.stop()
        let ended = DispatchSemaphore(value: 0)
        #expect(startDetachedThread(named: "test-executor") {
            try? executor.run()
            ended.signal()
        })
        #expect(ended.wait(timeout: .now() + 30) == .success, "run() returned")
    }
}
