import Testing
import Supervisor

@Suite struct ShutdownSequenceTests {
    private let policy = ShutdownPolicy(powerdownTimeout: .seconds(20), quitTimeout: .seconds(5))

    @Test func walksPowerdownQuitKill() {
        var sequence = ShutdownSequence(policy: policy)
        #expect(sequence.phase == .running)
        #expect(sequence.stopRequested(.signal(15)) == [.powerdown, .startTimer(.poweringDown, after: .seconds(20))])
        #expect(sequence.deadlineReached(.poweringDown) == [.quit, .startTimer(.quitting, after: .seconds(5))])
        #expect(sequence.deadlineReached(.quitting) == [.kill])
        #expect(sequence.phase == .killed)
        #expect(sequence.stopRequested(.signal(2)) == [])
        #expect(sequence.firstRequest == .signal(15))
    }

    @Test func staleDeadlinesAreIgnored() {
        var sequence = ShutdownSequence(policy: policy)
        #expect(sequence.deadlineReached(.poweringDown) == [])
        _ = sequence.stopRequested(.signal(15))
        _ = sequence.stopRequested(.signal(15))
        #expect(sequence.phase == .quitting)
        // The powerdown timer started earlier fires late: nothing happens.
        #expect(sequence.deadlineReached(.poweringDown) == [])
        #expect(sequence.actionFailed(in: .poweringDown) == [])
        #expect(sequence.phase == .quitting)
    }

    @Test func aFailedActionAdvancesLikeItsTimeout() {
        var sequence = ShutdownSequence(policy: policy)
        _ = sequence.stopRequested(StopRequest(reason: "x"))
        #expect(sequence.actionFailed(in: .poweringDown) == [.quit, .startTimer(.quitting, after: .seconds(5))])
    }

    @Test func outcomeDependsOnThePhaseAndStatus() {
        var sequence = ShutdownSequence(policy: policy)
        #expect(sequence.outcome(for: .exited(0)) == .poweredOff)
        #expect(sequence.outcome(for: .exited(1)) == .crashed)
        #expect(sequence.outcome(for: .signaled(11, coreDumped: true)) == .crashed)
        _ = sequence.stopRequested(.signal(15))
        #expect(sequence.outcome(for: .exited(0)) == .poweredOff)
        #expect(sequence.outcome(for: .exited(3)) == .crashed)
        _ = sequence.deadlineReached(.poweringDown)
        #expect(sequence.outcome(for: .exited(0)) == .quitAfterTimeout)
        _ = sequence.deadlineReached(.quitting)
        #expect(sequence.outcome(for: .signaled(9, coreDumped: false)) == .killedAfterTimeout)
    }

    @Test func waitStatusesDecode() {
        #expect(ChildTermination(waitStatus: 0) == .exited(0))
        #expect(ChildTermination(waitStatus: 7 << 8) == .exited(7))
        #expect(ChildTermination(waitStatus: 9) == .signaled(9, coreDumped: false))
        #expect(ChildTermination(waitStatus: 0x80 | 11) == .signaled(11, coreDumped: true))
    }

    @Test func resultsExplainThemselvesInOneLine() {
        let results = [
            SupervisionResult(outcome: .poweredOff, termination: .exited(0), stopRequest: .signal(15), orphansReaped: 0),
            SupervisionResult(outcome: .quitAfterTimeout, termination: .exited(0), stopRequest: .signal(15), orphansReaped: 0),
            SupervisionResult(outcome: .killedAfterTimeout, termination: .signaled(9, coreDumped: false), stopRequest: .signal(2), orphansReaped: 1),
            SupervisionResult(outcome: .crashed, termination: .exited(1), stopRequest: nil, orphansReaped: 0),
        ]
        #expect(results.map(\.exitCode) == [0, 2, 137, 1])
        #expect(results.map(\.succeeded) == [true, false, false, false])
        for result in results { #expect(!result.description.contains("\n")) }
        #expect(results[0].description.contains("after SIGTERM"))
        #expect(results[2].description.contains("killed"))
    }

    @Test func defaultsFitKubernetesDefaultGracePeriod() {
        let defaults = ShutdownPolicy()
        #expect(defaults.powerdownTimeout + defaults.quitTimeout < .seconds(30))
    }
}
