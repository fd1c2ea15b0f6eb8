#if canImport(Glibc)
import Glibc
#endif
import Logging

/// PID 1's duties around QEMU: start it, stop it gracefully on request, reap
/// every child, and say how it ended.
///
/// ```swift
/// let stops = try StopSignals.install()             // SIGTERM, SIGINT
/// let supervisor = Supervisor(policy: ShutdownPolicy(powerdownTimeout: .seconds(20)))
/// let result = try await supervisor.run(
///     ChildCommand(executable: qemu, arguments: args, fileDescriptors: fds),
///     stopActions: .qmp(socketPath: qmpPath),
///     stopRequests: stops)
/// exit(result.exitCode)
/// ```
///
/// On the first stop request the guest's ACPI power button is pressed; if QEMU
/// has not exited after `powerdownTimeout`, QEMU is told to quit; if it is still
/// there after `quitTimeout`, it is SIGKILLed. A further stop request skips the
/// rest of the current wait. Cancelling the calling task counts as a stop request.
package struct Supervisor: Sendable {
    package var policy: ShutdownPolicy
    package var reaping: ReapingScope
    package var logger: Logger

    package init(
        policy: ShutdownPolicy = ShutdownPolicy(),
        reaping: ReapingScope = .automatic,
        logger: Logger = Logger(label: "kvm-launch.supervisor")
    ) {
        self.policy = policy
        self.reaping = reaping
        self.logger = logger
    }

    /// Makes this process a child subreaper so that, when it is not PID 1, it
    /// still adopts and reaps orphaned descendants. A no-op for PID 1.
    package static func becomeSubreaper() throws(SupervisorError) {
        try Reaper.becomeSubreaper()
    }

    /// Blocks SIGPIPE for the calling thread and every thread it starts afterwards: a write to a socket
    /// or pipe whose reader is gone (libvirt's RPC socket as libvirtd stops, a closed stderr) then fails
    /// with EPIPE instead of ending the launcher. kvm-launch's async code runs on its main thread
    /// (Sources/LauncherExecutor); libdispatch's worker threads, where it ran before, blocked SIGPIPE too.
    /// Children start with an empty mask all the same (``ChildCommand``'s spawn, the libvirt daemons').
    package static func blockBrokenPipeSignal() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Spawns `command` and supervises it until it has exited and been reaped.
    ///
    /// - Parameters:
    ///   - stopActions: how to ask the child to stop.
    ///   - stopRequests: stop requests, usually from ``StopSignals/install(_:)``.
    ///   - onSpawn: called with the child's pid right after it started.
    package func run(
        _ command: ChildCommand,
        stopActions: StopActions,
        stopRequests: AsyncStream<StopRequest>,
        onSpawn: (@Sendable (pid_t) -> Void)? = nil
    ) async throws(SupervisorError) -> SupervisionResult {
        let pid = try ChildProcess.spawn(command)
        let child = SupervisedChild(pid: pid)
        logger.info("started \(command.executable)", metadata: ["pid": "\(pid)"])
        onSpawn?(pid)

        let (events, sink) = AsyncStream.makeStream(of: Event.self)
        let logger = self.logger
        Reaper.watch(
            child,
            scope: reaping,
            onOrphan: { orphan, termination in
                logger.debug("reaped orphan", metadata: ["pid": "\(orphan)", "status": "\(termination)"])
            },
            completion: { sink.yield(.exited($0)) }
        )
        let forwarder = Task {
            for await request in stopRequests { sink.yield(.stop(request)) }
        }
        defer { forwarder.cancel() }

        // The loop runs in its own task so that cancelling the caller turns into a
        // stop request instead of ending the loop while QEMU still runs.
        let loop = Task { [policy] in
            await Self.eventLoop(child: child, events: events, sink: sink, policy: policy, actions: stopActions, logger: logger)
        }
        let result = await withTaskCancellationHandler {
            await loop.value
        } onCancel: {
            sink.yield(.stop(StopRequest(reason: "cancellation")))
        }
        return try result.get()
    }

    enum Event: Sendable {
        case stop(StopRequest)
        case deadline(ShutdownSequence.Phase)
        case actionFailed(ShutdownSequence.Phase, String)
        case exited(Result<ReapReport, SupervisorError>)
    }

    private static func eventLoop(
        child: SupervisedChild,
        events: AsyncStream<Event>,
        sink: AsyncStream<Event>.Continuation,
        policy: ShutdownPolicy,
        actions: StopActions,
        logger: Logger
    ) async -> Result<SupervisionResult, SupervisorError> {
        let steps = ShutdownSteps(
            powerdown: { try await actions.powerdown(child) },
            quit: {
                do {
                    try await actions.quit(child)
                } catch {
                    logger.warning("quit failed, sending SIGTERM", metadata: ["error": "\(error)"])
                    child.signal(SIGTERM)
                }
            },
            kill: {
                logger.warning("killing QEMU", metadata: ["pid": "\(child.pid)"])
                child.signal(SIGKILL)
                return nil  // the reaper reports its end
            }
        )
        var driver = ShutdownDriver(policy: policy, steps: steps, waitingFor: "QEMU to exit", logger: logger,
                                    deadline: { sink.yield(.deadline($0)) }, failed: { sink.yield(.actionFailed($0, $1)) })
        defer { driver.finish() }

        for await event in events {
            switch event {
            case let .stop(request):
                driver.stopRequested(request)
            case let .deadline(phase):
                driver.deadlineReached(phase)
            case let .actionFailed(phase, message):
                driver.stepFailed(phase, message)
            case let .exited(report):
                let sequence = driver.sequence
                return report.map { report in
                    SupervisionResult(
                        outcome: sequence.outcome(for: report.termination),
                        termination: report.termination,
                        stopRequest: sequence.firstRequest,
                        orphansReaped: report.orphansReaped
                    )
                }
            }
        }
        return .failure(.waitFailed(reason: "event stream ended before the child was reaped"))
    }
}
