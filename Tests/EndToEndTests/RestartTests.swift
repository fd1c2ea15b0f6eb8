import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A launcher killed with SIGKILL at any point, then started again in the same namespace (what a
/// Kubernetes container restart does), ends where one clean run ends: same guest MAC and address,
/// and the container restored on a clean stop.
///
/// Every launcher here runs in the production shape: PID 1 of a new PID namespace with a fresh,
/// empty /run (``ContainerFixture/startAsContainer(_:environment:)``), in the same network namespace
/// each time. Every wait has a deadline and fails the test when it passes.
@Suite(.serialized, .enabled(if: isRoot, "needs root: makes network and PID namespaces and links, and runs QEMU"))
struct RestartTests {
    typealias VMRun = EndToEndTests.VMRun

    /// The attach steps a run logged (`DEBUG=yes`: "step N: …" per step the attacher completed).
    static func attachSteps(in lines: [String]) -> [Int] {
        lines.compactMap { line in
            guard let range = line.range(of: #" step [0-9]+: "#, options: .regularExpression) else { return nil }
            return Int(line[range].dropFirst(" step ".count).dropLast(2))
        }
    }

    /// A launch whose "QEMU" is `/bin/true`: it recovers what an earlier run left, attaches every
    /// step, sees QEMU end at once and restores the container. Expects exit status 0 and returns
    /// the run (its stderr holds the recovery's and the steps' lines).
    static func recoverAttachAndStop(_ fixture: ContainerFixture, _ environment: [String: String], _ context: String,
                                     sourceLocation: SourceLocation = #_sourceLocation) throws -> ConsoleProcess {
        let run = try VMRun(fixture, environment: environment.merging(["LAUNCHER": "/bin/true", "DEBUG": "yes"]) { _, new in new },
                            image: try blankImage(in: fixture), asContainer: true)
        defer { run.stop() }
        _ = try run.process.containerPID1()
        let termination = run.process.waitForTermination(timeout: 60)
        try #require(termination == .exited(0),
                     "\(context): a launch with QEMU replaced by /bin/true ends with exit status 0, not \(termination.map { "\($0)" } ?? "a hang of 60 s"); stderr: \(run.process.stderrLines.suffix(12))",
                     sourceLocation: sourceLocation)
        return run.process
    }

    /// Starts kvm-launch as PID 1 with `KVM_LAUNCH_TEST_KILL_AFTER_STEP=step` ("QEMU" is `/bin/true`),
    /// waits (bounded) for the hook to report that step, SIGKILLs it from outside its PID namespace
    /// and requires that it died by exactly that signal. Returns the killed run's process.
    static func killAfter(step: Int, _ fixture: ContainerFixture, _ environment: [String: String], _ context: String,
                          sourceLocation: SourceLocation = #_sourceLocation) throws -> ConsoleProcess {
        let killed = try VMRun(fixture, environment: environment.merging(["LAUNCHER": "/bin/true", "KVM_LAUNCH_TEST_KILL_AFTER_STEP": "\(step)"]) { _, new in new },
                               image: try blankImage(in: fixture), asContainer: true)
        defer { killed.stop() }
        let pid1 = try killed.process.containerPID1()
        // As PID 1 the hook cannot kill itself: it says so and waits for the kill from outside.
        let request = killed.process.waitForLine(onStderr: true, timeout: 60) { $0.contains("fault injection: after attach step \(step),") }
        try #require(request != nil, "\(context): the launcher (PID 1) reached the step and asked to be killed; it ended with \(killed.process.waitForTermination(timeout: 5).map { "\($0)" } ?? "nothing"); stderr: \(killed.process.stderrLines.suffix(12))",
                     sourceLocation: sourceLocation)
        #expect(kill(pid1, SIGKILL) == 0, "\(context): SIGKILL from outside the PID namespace", sourceLocation: sourceLocation)
        let termination = killed.process.waitForTermination(timeout: 30)
        try #require(termination == .signalled(SIGKILL), "\(context): the launcher died by SIGKILL, not \(termination.map { "\($0)" } ?? "a hang of 30 s"); stderr: \(killed.process.stderrLines.suffix(8))",
                     sourceLocation: sourceLocation)
        let parentSaw = killed.process.waitForLine(onStderr: true, timeout: 10) { $0.hasPrefix("ContainerStart: killed by signal") || $0.hasPrefix("ContainerStart: exited") }
        #expect(parentSaw == "ContainerStart: killed by signal 9", "\(context): its parent saw signal 9", sourceLocation: sourceLocation)
        return killed.process
    }

    /// An empty 16 MiB qcow2 for launches whose "QEMU" is `/bin/true` (no guest needed).
    static func blankImage(in fixture: ContainerFixture) throws -> String {
        let path = fixture.directory.appendingPathComponent("blank.qcow2").path
        if !FileManager.default.fileExists(atPath: path) {
            try run(["qemu-img", "create", "-q", "-f", "qcow2", path, "16M"])
        }
        return path
    }

    /// The differing lines of two ``ContainerFixture/state()`` snapshots.
    static func difference(_ before: String, _ after: String) -> String {
        let old = Set(before.split(separator: "\n")), new = Set(after.split(separator: "\n"))
        return "only before: \(old.subtracting(new).sorted()); only after: \(new.subtracting(old).sorted())"
    }

    /// Kills the launcher at every attach step, as PID 1 (from outside its PID namespace, at the
    /// moment the fault-injection hook reports that step), and after each kill runs a real recovery
    /// and compares the whole namespace with the start. The number of steps is the attacher's own,
    /// taken from a clean run in the same mode; a kill after the last step never happens.
    @Test(arguments: ["macvtap", "bridge"])
    func sigkillAtEveryAttachStepThenRestart(_ mode: String) throws {
        try EndToEndTests.requireImage()
        let fixture = try ContainerFixture(EndToEndTests.oneInterface)
        defer { fixture.destroy() }
        let before = try fixture.state()
        let originalMAC = try fixture.mac(of: "eth0")
        let environment = ["AUTO_ATTACH": "yes", "USE_NET_BRIDGES": mode == "bridge" ? "yes" : "no"]

        // A clean run: how many steps the attacher takes for this mode, and a clean restore.
        let clean = try Self.recoverAttachAndStop(fixture, environment, "clean run")
        let steps = Self.attachSteps(in: clean.stderrLines)
        try #require(!steps.isEmpty, "DEBUG=yes logs the attach steps; stderr: \(clean.stderrLines.suffix(20))")
        let stepCount = steps.max()!
        #expect(steps == Array(1...stepCount), "the steps are numbered 1…\(stepCount) in order")
        #expect(try fixture.state() == before, "a clean run restores the container")
        // The plan states the same count (`--dry-run --json`'s attachStepCount, the attacher's step list).
        let plan = try ContainerShapeTests.dryRun(fixture, environment)
        #expect(plan["attachStepCount"] as? Int == stepCount,
                "--dry-run --json's attachStepCount is the number of steps the attacher took (\(stepCount))")

        for step in 1...stepCount {
            _ = try Self.killAfter(step: step, fixture, environment, "step \(step)")

            // The next start (same namespace, fresh /run), stopped right after its recovery: the
            // namespace is already exactly as at the start.
            let recovered = try Self.killAfter(step: 0, fixture, environment, "the recovery after a kill at step \(step)")
            #expect(recovered.stderrLines.contains { $0.contains("after an earlier run that did not finish") || $0.contains("left behind by an earlier run") },
                    "step \(step): the next launcher found what the killed one left; stderr: \(recovered.stderrLines.suffix(12))")
            let afterRecovery = try fixture.state()
            #expect(afterRecovery == before, "step \(step): after the kill and the next start's recovery the namespace is as at the start; \(Self.difference(before, afterRecovery))")

            // A whole start after that (recover, attach, stop) restores exactly too.
            let recovery = try Self.recoverAttachAndStop(fixture, environment, "after a kill at step \(step)")
            #expect(Self.attachSteps(in: recovery.stderrLines).max() == stepCount, "step \(step): the recovered launch attached every step again")
            let after = try fixture.state()
            #expect(after == before, "step \(step): after the kill and a recovery the namespace is as at the start; \(Self.difference(before, after))")
        }

        // One step more than the attacher has: the hook never fires and the launch runs through.
        let beyond = try Self.recoverAttachAndStop(fixture, environment.merging(["KVM_LAUNCH_TEST_KILL_AFTER_STEP": "\(stepCount + 1)"]) { _, new in new },
                                                   "kill requested after step \(stepCount + 1)")
        #expect(!beyond.stderrLines.contains { $0.contains("fault injection") }, "the attach has exactly \(stepCount) steps")

        // Killed once more while the real VM runs: the whole PID namespace (QEMU with it) is gone,
        // the namespace keeps the takeover.
        let running = try VMRun(fixture, environment: environment, asContainer: true)
        defer { running.stop() }
        let pid1 = try running.process.containerPID1()
        _ = try running.waitUntilReady()
        #expect(kill(pid1, SIGKILL) == 0)
        let termination = running.process.waitForTermination(timeout: 30)
        #expect(termination == .signalled(SIGKILL), "the running launcher died by SIGKILL, not \(termination.map { "\($0)" } ?? "a hang")")
        #expect(try fixture.mac(of: "eth0") != originalMAC, "the kill left the interface taken over")

        // A restart in the same namespace: the VM comes back with the same identity, stops cleanly.
        let final = try VMRun(fixture, environment: environment, asContainer: true)
        defer { final.stop() }
        _ = try final.process.containerPID1()
        let nics = try final.waitUntilReady()
        #expect(nics.first?.mac == originalMAC)
        #expect(nics.first?.address == "10.88.0.2/24")
        #expect(nics.first?.gateway == "10.88.0.1")
        #expect(fixture.pingFromPeer("10.88.0.2"))
        #expect(try fixture.peerNeighbourMAC("10.88.0.2") == originalMAC, "the network sees the VM at the container's MAC again")
        final.process.signal(SIGTERM)
        #expect(final.process.waitForTermination(timeout: 60) == .exited(0))
        let after = try fixture.state()
        #expect(after == before, "restored: \(Self.difference(before, after))")
    }
}
