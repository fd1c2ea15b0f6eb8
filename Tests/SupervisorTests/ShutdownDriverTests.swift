import Logging
import Supervisor
import Synchronization
import TestSupport
import Testing

/// The stop loop both backends share, over recorded steps (the backends' steps are the OS part,
/// tested end to end by SupervisorTests and LibvirtEndToEndTests).
@Suite struct ShutdownDriverTests {
    /// What the steps and the driver's callbacks did, in order.
    final class Record: Sendable {
        let entries = Mutex<[String]>([])
        func add(_ entry: String) { entries.withLock { $0.append(entry) } }
        var all: [String] { entries.withLock { $0 } }
    }

    /// Timeouts that never fire during a test: every step here is driven by requests.
    static let policy = ShutdownPolicy(powerdownTimeout: .seconds(3600), quitTimeout: .seconds(3600))

    static func driver(_ record: Record, powerdownFails: Bool = false, killConfirmation: Duration? = .zero) -> ShutdownDriver {
        let steps = ShutdownSteps(
            powerdown: {
                record.add("powerdown")
                if powerdownFails { throw FixtureFailure("no QMP") }
                do { try await Task.sleep(for: .seconds(3600)) } catch { record.add("powerdown cancelled"); throw error }
            },
            quit: { record.add("quit") },
            kill: { record.add("kill"); return killConfirmation }
        )
        return ShutdownDriver(policy: policy, steps: steps, waitingFor: "the test VM", logger: Logger(label: "errno-shutdown-driver"),
                              deadline: { record.add("deadline \($0)") }, failed: { record.add("failed \($0): \($1)") })
    }

    /// Stop, stop again, and again: power button, then quit (the press cancelled first), then kill, whose
    /// confirmation time running out comes back as the `killed` deadline.
    @Test func eachStopRequestMovesTheStopOn() async {
        let record = Record()
        var driver = Self.driver(record)
        defer { driver.finish() }
        driver.stopRequested(StopRequest(reason: "first"))
        #expect(await eventually { record.all == ["powerdown"] })
        #expect(driver.sequence.phase == .poweringDown && driver.sequence.firstRequest == StopRequest(reason: "first"))
        driver.stopRequested(StopRequest(reason: "second"))
        #expect(await eventually { Set(record.all) == ["powerdown", "powerdown cancelled", "quit"] })
        #expect(driver.sequence.phase == .quitting)
        driver.stopRequested(StopRequest(reason: "third"))
        #expect(await eventually { record.all.suffix(2) == ["kill", "deadline killed"] })
        #expect(driver.sequence.phase == .killed && driver.sequence.firstRequest == StopRequest(reason: "first"))
    }

    /// A power button that cannot be pressed is reported as the failed step, and that failure moves the stop to quit.
    @Test func aFailedPowerdownIsReportedAndQuitFollows() async {
        let record = Record()
        var driver = Self.driver(record, powerdownFails: true)
        defer { driver.finish() }
        driver.stopRequested(StopRequest(reason: "stop"))
        #expect(await eventually { record.all == ["powerdown", "failed poweringDown: no QMP"] })
        driver.stepFailed(.poweringDown, "no QMP")
        #expect(await eventually { record.all.last == "quit" })
        #expect(driver.sequence.phase == .quitting)
    }

    /// A backend whose reaper sees QEMU end asks for no confirmation: no `killed` deadline then.
    @Test func killWithoutConfirmationStartsNoTimer() async {
        let record = Record()
        var driver = Self.driver(record, powerdownFails: true, killConfirmation: nil)
        defer { driver.finish() }
        driver.stopRequested(StopRequest(reason: "stop"))
        driver.stopRequested(StopRequest(reason: "again"))
        driver.stopRequested(StopRequest(reason: "kill"))
        #expect(await eventually { record.all.contains("kill") && record.all.contains("quit") })
        #expect(driver.sequence.phase == .killed)
        #expect(!record.all.contains("deadline killed"))
    }
}
