import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A launcher killed with SIGKILL at any point, then started again in the same namespace (what a
/// Kubernetes container restart does), ends where one clean run ends: same guest MAC and address,
/// and the container restored on a clean stop.
@Suite(.serialized, .enabled(if: isRoot, "needs root: makes network namespaces and links, and runs QEMU"))
struct RestartTests {
    typealias VMRun = EndToEndTests.VMRun

    static func dryRunPlan(_ fixture: ContainerFixture, _ environment: [String: String]) throws -> [String: Any] {
        var env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "VM_ACCEL": "tcg", "VM_IMAGE": try VMRun.overlay(in: fixture),
                   "KVM_LAUNCH_RUN_DIR": fixture.directory.appendingPathComponent("run").path]
        env.merge(environment) { _, new in new }
        let result = try fixture.container.exec([kvmLaunchBinary, "--dry-run", "--json"], environment: env)
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
    }

    /// Kills QEMU processes started for this fixture (their command line names its private directory).
    static func killQEMU(of fixture: ContainerFixture) {
        let marker = fixture.directory.path
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return }
        for entry in entries {
            guard let pid = Int32(entry),
                  let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let command = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            if command.contains("qemu-system") && command.contains(marker) { kill(pid, SIGKILL) }
        }
    }

    @Test(arguments: ["macvtap", "bridge"])
    func sigkillAtEveryAttachStepThenRestart(_ mode: String) throws {
        try EndToEndTests.requireImage()
        let fixture = try ContainerFixture(EndToEndTests.oneInterface)
        defer { Self.killQEMU(of: fixture); fixture.destroy() }
        let before = try fixture.state()
        let originalMAC = try fixture.mac(of: "eth0")
        let environment = ["AUTO_ATTACH": "yes", "USE_NET_BRIDGES": mode == "bridge" ? "yes" : "no"]

        var step = 1
        while true {
            let killed = try VMRun(fixture, environment: environment.merging(["KVM_LAUNCH_TEST_KILL_AFTER_STEP": "\(step)"]) { _, new in new })
            defer { killed.stop() }
            // Either the injected SIGKILL ends it, or the attach had fewer steps and QEMU starts.
            _ = killed.process.waitForLine(onStderr: true, timeout: 60) { $0.contains("started /") }
            let endedByInjectedKill = killed.process.waitForExit(timeout: 0.5) != nil && killed.process.endedBySignal
            killed.stop()
            Self.killQEMU(of: fixture)
            if !endedByInjectedKill {
                // The attach has fewer steps than this: the run reached QEMU and was stopped by us.
                break
            }
            // Whatever the kill left behind, the next launcher plans the original identity.
            let plan = try Self.dryRunPlan(fixture, environment)
            let interfaces = plan["interfaces"] as? [[String: Any]] ?? []
            #expect(interfaces.first?["guestMAC"] as? String == originalMAC, "after a kill at step \(step)")
            #expect(interfaces.first?["guestAddress"] as? String == "10.88.0.2/24", "after a kill at step \(step)")
            step += 1
            if step > 20 { Issue.record("the attach never completed"); break }
        }
        #expect(step > 5, "the kill points covered the attach steps")

        // Killed once more while the VM runs: launcher and QEMU gone, links left behind.
        let running = try VMRun(fixture, environment: environment)
        defer { running.stop() }
        _ = try running.waitUntilReady()
        running.process.signal(SIGKILL)
        _ = running.process.waitForExit(timeout: 30)
        Self.killQEMU(of: fixture)
        #expect(try fixture.mac(of: "eth0") != originalMAC, "the kill left the interface taken over")

        let final = try VMRun(fixture, environment: environment)
        defer { final.stop() }
        let nics = try final.waitUntilReady()
        #expect(nics.first?.mac == originalMAC)
        #expect(nics.first?.address == "10.88.0.2/24")
        #expect(nics.first?.gateway == "10.88.0.1")
        #expect(fixture.pingFromPeer("10.88.0.2"))
        final.process.signal(SIGTERM)
        #expect(final.process.waitForExit(timeout: 60) == 0)
        let after = try fixture.state()
        #expect(after == before, "restored: only before \(Set(before.split(separator: "\n")).subtracting(after.split(separator: "\n"))), only after \(Set(after.split(separator: "\n")).subtracting(before.split(separator: "\n")))")
    }
}
