import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// kvm-launch while its VM idles (issue 15: no wake-ups): the real launcher with the test guest under
/// TCG, watched through /proc. No libdispatch thread ever appears (its worker pool's monitor would
/// wake the process every second), and a window comes where no thread of kvm-launch ran at all: the
/// same threads, each with exactly the context switches it had before. A wake-up source with a period
/// under the window (libdispatch's is 1 s) leaves no such window; a one-off event (a late packet from
/// the guest) only spoils the window it falls in, so a loaded machine does not make this fail.
@Suite(.serialized, .enabled(if: isRoot, "needs root: makes network namespaces and a macvtap, and runs QEMU"))
struct IdleEndToEndTests {
    /// One thread of a process as /proc shows it.
    struct ThreadState: Equatable {
        var name: String
        /// Voluntary plus involuntary context switches: unchanged exactly when the thread never ran.
        var switches: Int
    }

    /// Every thread of `pid`, by thread id. A thread that ends while being read is left out.
    static func threads(of pid: Int32) throws -> [Int32: ThreadState] {
        var threads: [Int32: ThreadState] = [:]
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") {
            guard let tid = Int32(entry),
                  let name = try? String(contentsOfFile: "/proc/\(pid)/task/\(entry)/comm", encoding: .utf8),
                  let status = try? String(contentsOfFile: "/proc/\(pid)/task/\(entry)/status", encoding: .utf8)
            else { continue }
            let switches = status.split(separator: "\n")
                .filter { $0.hasPrefix("voluntary_ctxt_switches:") || $0.hasPrefix("nonvoluntary_ctxt_switches:") }
                .compactMap { $0.split(separator: "\t").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
            guard switches.count == 2 else { throw EndToEndTests.Failure("no context switch counters in /proc/\(pid)/task/\(entry)/status") }
            threads[tid] = ThreadState(name: name.trimmingCharacters(in: .newlines), switches: switches.reduce(0, +))
        }
        return threads
    }

    /// libdispatch names its worker threads after their root queues (`com.apple.root.default-qos.overcommit`),
    /// which /proc shows by the last 15 bytes (`-qos.overcommit`).
    static func isLibdispatchThread(_ name: String) -> Bool { name.contains("qos") || name.hasPrefix("com.apple.") }

    @Test func anIdleLauncherHasNoLibdispatchThreadAndNothingWakesIt() throws {
        try EndToEndTests.requireImage()
        let fixture = try ContainerFixture(EndToEndTests.oneInterface)
        defer { fixture.destroy() }
        let before = try fixture.state()
        let vm = try EndToEndTests.VMRun(fixture, environment: ["AUTO_ATTACH": "yes"])
        defer { vm.stop() }
        _ = try vm.waitUntilReady()
        // `ip netns exec` execs kvm-launch in place: the process the test started is the launcher.
        let pid = vm.process.pid
        let name = try String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8).trimmingCharacters(in: .newlines)
        try #require(name == "kvm-launch", "the watched process is kvm-launch, not \(name)")

        // Up to ten windows of 3 s (a periodic wake-up of up to 3 s lands in every one of them).
        var previous = try Self.threads(of: pid)
        var names = Set(previous.values.map(\.name))
        var quietWindow = false
        var changes: [String] = []
        for _ in 0..<10 where !quietWindow {
            sleep(3)
            let current = try Self.threads(of: pid)
            names.formUnion(current.values.map(\.name))
            quietWindow = current == previous
            if !quietWindow {
                let changed = Set(current.keys).union(previous.keys).filter { current[$0] != previous[$0] }.sorted()
                changes.append(changed.map { tid in
                    "\(current[tid]?.name ?? previous[tid]?.name ?? "?") (\(tid)): \(previous[tid].map { "\($0.switches)" } ?? "new") → \(current[tid].map { "\($0.switches)" } ?? "gone")"
                }.joined(separator: ", "))
            }
            previous = current
        }
        #expect(names.filter(Self.isLibdispatchThread).isEmpty, "libdispatch threads in kvm-launch: \(names.sorted())")
        #expect(quietWindow, "kvm-launch woke up in every 3 s window while the VM idled; per window, the threads that ran: \(changes)")

        // The launcher that idled this way still answers and stops as before.
        let health = try fixture.container.exec([kvmLaunchBinary, "status"], environment: ["KVM_LAUNCH_RUN_DIR": vm.runDirectory], check: false)
        #expect(health.status == 0 && health.stdout.contains("VM running"))
        vm.process.signal(SIGTERM)
        #expect(vm.process.waitForExit(timeout: 60) == 0, "graceful power-off exits 0; stderr: \(vm.process.stderrLines.suffix(5))")
        #expect(vm.process.lines.contains { $0.contains("KVMLAUNCH-POWEROFF") }, "the guest shut itself down")
        try EndToEndTests().expectRestored(fixture, before)
    }
}
