import CLibvirt
import Libvirt
import Logging
import Supervisor

#if canImport(Glibc)
import Glibc
#endif

/// Runs the domain on a started libvirtd, the libvirt counterpart of ``Supervisor/Supervisor``:
/// starts it transient with auto-destroy, makes its serial console the container's stdio, turns a
/// stop request into ACPI power-button presses (repeated), then `virDomainDestroy` after the
/// policy's timeout, and ends when libvirt reports the domain stopped. The result is a
/// ``SupervisionResult`` classified exactly like the direct path's (same exit statuses).
package struct LibvirtMachine: Sendable {
    package var definition: DomainDefinition
    package var policy: ShutdownPolicy
    /// Wire the serial console to stdin/stdout.
    package var console: Bool
    /// How often the power button is pressed again while the guest has not reacted.
    package var repeatPowerButton: Duration
    package var logger: Logger

    package init(definition: DomainDefinition, policy: ShutdownPolicy, console: Bool = true,
                repeatPowerButton: Duration = .seconds(2), logger: Logger) {
        self.definition = definition
        self.policy = policy
        self.console = console
        self.repeatPowerButton = repeatPowerButton
        self.logger = logger
    }

    enum Event: Sendable {
        case stop(StopRequest)
        case deadline(ShutdownSequence.Phase)
        case actionFailed(ShutdownSequence.Phase, String)
        case stopped(ChildTermination, String)
        case daemonGone(String)
    }

    /// Starts the domain and supervises it until it stopped; `onStarted` runs once QEMU runs.
    /// Throws ``LibvirtBackendError/domainRejected(reason:)`` when libvirt refuses the domain.
    package func run(connection: Connection, daemons: LibvirtDaemons, stopRequests: AsyncStream<StopRequest>,
                    onStarted: (@Sendable (Domain) -> Void)? = nil) async throws(LibvirtBackendError) -> SupervisionResult {
        let (events, sink) = AsyncStream.makeStream(of: Event.self)
        let name = definition.name
        do {
            try connection.onLifecycleEvent { event in
                guard event.domain == name, event.isStopped else { return }
                sink.yield(.stopped(Self.termination(stoppedDetail: event.detail), "\(event)"))
            }
            try connection.onClose { sink.yield(.daemonGone("the connection to libvirtd closed")) }
        } catch {
            throw .libvirt(error)
        }
        let domain: Domain
        let xml = definition.xml()
        do {
            domain = try await offPool { try connection.createDomain(xml: xml, autoDestroy: true) }
        } catch let error as LibvirtError {
            throw .domainRejected(reason: error.message)
        } catch {
            throw .domainRejected(reason: "\(error)")
        }
        logger.info("libvirt started domain \(name)")
        onStarted?(domain)

        var bridge: ConsoleBridge?
        if console {
            do {
                let stream = try connection.makeStream()
                try domain.openConsole(stream)
                bridge = ConsoleBridge(stream: stream)
                bridge?.start()
            } catch {
                logger.warning("the serial console is not connected: \(error)")
            }
        }
        defer { bridge?.finish() }

        let forwarder = Task {
            for await request in stopRequests { sink.yield(.stop(request)) }
        }
        defer { forwarder.cancel() }
        // Events are the normal path; this poll catches a libvirtd that died without the close
        // callback firing and a domain that vanished without an event.
        let poll = Task {
            var missing = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if !daemons.libvirtdRunning { sink.yield(.daemonGone("libvirtd exited")); return }
                do {
                    let (state, reason) = try await offPool { try domain.stateAndReason() }
                    if state == .shutOff { sink.yield(.stopped(Self.termination(shutoffReason: reason), "shut off (reason \(reason))")); return }
                    missing = 0
                } catch {
                    if (error as? LibvirtError)?.isNoDomain == true {
                        missing += 1
                    } else if !connection.isAlive {
                        sink.yield(.daemonGone("\(error)"))
                        return
                    }
                    if missing >= 3 { sink.yield(.stopped(.exited(1), "the domain disappeared")); return }
                }
            }
        }
        defer { poll.cancel() }

        let repeatEvery = repeatPowerButton
        let logger = self.logger
        let pidFile = "\(daemons.configuration.qemuStateDirectory)/\(name).pid"
        let steps = ShutdownSteps(
            powerdown: {
                var landed = false
                while !Task.isCancelled {
                    do {
                        try await offPool { try domain.pressPowerButton() }
                        landed = true
                    } catch {
                        if !landed { throw error }
                    }
                    do { try await Task.sleep(for: repeatEvery) } catch { return }
                }
            },
            quit: {
                do {
                    try await offPool { try domain.destroy() }
                } catch {
                    logger.warning("virDomainDestroy failed: \(error)")
                }
            },
            kill: {
                if let pid = LibvirtDaemons.recordedProcess(pidFile, processPrefix: "qemu") {
                    logger.warning("killing QEMU", metadata: ["pid": "\(pid)"])
                    kill(pid, SIGKILL)
                }
                return .seconds(5)  // no stop event by then: give up on the domain
            }
        )
        var driver = ShutdownDriver(policy: policy, steps: steps, waitingFor: "the domain to stop", logger: logger,
                                    deadline: { sink.yield(.deadline($0)) }, failed: { sink.yield(.actionFailed($0, $1)) })
        defer { driver.finish() }
        for await event in events {
            switch event {
            case let .stop(request):
                driver.stopRequested(request)
            case let .deadline(phase):
                if phase == .killed {
                    return SupervisionResult(outcome: .killedAfterTimeout, termination: .signaled(SIGKILL, coreDumped: false),
                                             stopRequest: driver.sequence.firstRequest, orphansReaped: 0)
                }
                driver.deadlineReached(phase)
            case let .actionFailed(phase, message):
                driver.stepFailed(phase, message)
            case let .stopped(termination, how):
                logger.info("domain \(name) stopped: \(how)")
                return SupervisionResult(outcome: driver.sequence.outcome(for: termination), termination: termination,
                                         stopRequest: driver.sequence.firstRequest, orphansReaped: 0)
            case let .daemonGone(reason):
                logger.error("libvirtd is gone (\(reason)); the domain cannot be supervised any more")
                return SupervisionResult(outcome: .crashed, termination: .exited(1), stopRequest: driver.sequence.firstRequest, orphansReaped: 0)
            }
        }
        return SupervisionResult(outcome: .crashed, termination: .exited(1), stopRequest: driver.sequence.firstRequest, orphansReaped: 0)
    }

    /// How a `VIR_DOMAIN_EVENT_STOPPED` detail maps onto a process end, for the same
    /// classification as the direct path: the guest's own shutdown is QEMU exiting 0.
    static func termination(stoppedDetail detail: Int32) -> ChildTermination {
        switch UInt32(bitPattern: detail) {
        case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN.rawValue: .exited(0)
        case VIR_DOMAIN_EVENT_STOPPED_DESTROYED.rawValue: .signaled(SIGTERM, coreDumped: false)
        case VIR_DOMAIN_EVENT_STOPPED_CRASHED.rawValue: .signaled(SIGABRT, coreDumped: false)
        default: .exited(1)
        }
    }

    /// The same for `virDomainGetState`'s shut-off reason.
    static func termination(shutoffReason reason: Int32) -> ChildTermination {
        switch UInt32(bitPattern: reason) {
        case VIR_DOMAIN_SHUTOFF_SHUTDOWN.rawValue: .exited(0)
        case VIR_DOMAIN_SHUTOFF_DESTROYED.rawValue: .signaled(SIGTERM, coreDumped: false)
        case VIR_DOMAIN_SHUTOFF_CRASHED.rawValue: .signaled(SIGABRT, coreDumped: false)
        default: .exited(1)
        }
    }
}
