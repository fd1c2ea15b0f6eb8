import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Real deployments (issue 11): two containers sharing the host's /run, MTU without DHCP, and the
/// console on a real terminal. The test guest under real QEMU.
@Suite(.serialized, .enabled(if: isRoot, "needs root: makes network, PID and mount namespaces and macvtaps, and runs QEMU"))
struct SharedRunTests {
    /// kvm-launch as PID 1 of its own PID namespace, in the fixture's network namespace, with a
    /// private mount namespace (its own /proc) whose /run is `sharedRun` (what `-v /var/run:/var/run` gives every
    /// container on a Debian host). No KVM_LAUNCH_RUN_DIR: the default /run/kvm-launch, shared.
    final class ContainerVM: @unchecked Sendable {  // used from the test's thread only
        let fixture: ContainerFixture
        let process: ConsoleProcess

        init(_ fixture: ContainerFixture, sharedRun: String) throws {
            self.fixture = fixture
            let env = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "AUTO_ATTACH": "yes",
                       "VM_ACCEL": "tcg", "VM_MEMORY": "256M", "VM_IMAGE": try EndToEndTests.VMRun.overlay(in: fixture)]
            process = try ConsoleProcess([
                "/usr/sbin/ip", "netns", "exec", fixture.container.name,
                // --mount-proc: a /proc of its own PID namespace, as every container has (some library
                // code reads /proc/<own pid>/stat and traps when the host's /proc does not show it).
                "/usr/bin/unshare", "--pid", "--mount", "--mount-proc", "--kill-child",
                "/bin/sh", "-c", "mount --bind \"$1\" /run && exec \"$2\"", "sh", sharedRun, kvmLaunchBinary,
            ], environment: env)
        }

        /// The launcher's PID (in the host's PID namespace): unshare's only child, once it is kvm-launch.
        func launcherPID() throws -> Int32 {
            for _ in 0..<100 {
                let children = (try? String(contentsOfFile: "/proc/\(process.pid)/task/\(process.pid)/children", encoding: .utf8)) ?? ""
                if let pid = children.split(separator: " ").first.flatMap({ Int32($0) }),
                   let name = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8), name.hasPrefix("kvm-launch") {
                    return pid
                }
                usleep(100_000)
            }
            throw EndToEndTests.Failure("kvm-launch did not start under unshare")
        }

        /// `kvm-launch status` as `docker exec` runs it: in the launcher's network, PID and mount namespaces.
        func status() throws -> ProcessResult {
            try run(["/usr/bin/nsenter", "-t", String(try launcherPID()), "-n", "-p", "-m", "--", kvmLaunchBinary, "status"], check: false)
        }

        func waitUntilReady(timeout: TimeInterval = 240) throws -> [GuestNIC] {
            guard process.waitFor("KVMLAUNCH-READY", timeout: timeout) != nil else {
                throw EndToEndTests.Failure("the guest did not print KVMLAUNCH-READY; console:\n\(process.lines.suffix(30).joined(separator: "\n"))\nstderr:\n\(process.stderrLines.suffix(20).joined(separator: "\n"))")
            }
            return process.lines.compactMap(GuestNIC.init(line:))
        }
    }

    static func launcherDirectories(_ sharedRun: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: sharedRun + "/kvm-launch")) ?? []).filter { $0.hasPrefix("vm-") }.sorted()
    }

    /// Issue 11 item 1: with one /run for both, stopping the first VM powers off the first VM only.
    @Test func twoContainersSharingRunStopOnlyTheirOwnVM() throws {
        try EndToEndTests.requireImage()
        let sharedRun = FileManager.default.temporaryDirectory.appendingPathComponent("kl-sharedrun-run-\(uniqueSuffix())").path
        try FileManager.default.createDirectory(atPath: sharedRun, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: sharedRun) }
        let first = try ContainerFixture([.init(name: "eth0", addresses: ["10.88.0.2/24"], peerAddress: "10.88.0.1/24", defaultRoute: true)])
        defer { first.destroy() }
        let second = try ContainerFixture([.init(name: "eth0", addresses: ["10.77.0.2/24"], peerAddress: "10.77.0.1/24", defaultRoute: true)])
        defer { second.destroy() }
        let firstBefore = try first.state(), secondBefore = try second.state()

        // Started at the same moment.
        let vm1 = try ContainerVM(first, sharedRun: sharedRun)
        defer { vm1.process.stop() }
        let vm2 = try ContainerVM(second, sharedRun: sharedRun)
        defer { vm2.process.stop() }
        let nics1 = try vm1.waitUntilReady(), nics2 = try vm2.waitUntilReady()
        #expect(nics1.first?.address == "10.88.0.2/24" && nics2.first?.address == "10.77.0.2/24")
        #expect(first.pingFromPeer("10.88.0.2"), "the first VM answers")
        #expect(second.pingFromPeer("10.77.0.2"), "the second VM answers")
        #expect(Self.launcherDirectories(sharedRun).count == 2, "one private directory each: \(Self.launcherDirectories(sharedRun))")
        let pid1 = try vm1.launcherPID(), pid2 = try vm2.launcherPID()
        let nspid = try String(contentsOfFile: "/proc/\(pid1)/status", encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("NSpid:") }
        #expect(nspid?.split(separator: "\t").last == "1", "kvm-launch is PID 1 of its PID namespace: \(nspid ?? "")")
        #expect(pid1 != pid2)
        for vm in [vm1, vm2] {
            let health = try vm.status()
            #expect(health.status == 0 && health.stdout.contains("VM running"), "\(health.stdout)\(health.stderr)")
        }

        kill(pid1, SIGTERM)
        #expect(vm1.process.waitForExit(timeout: 90) == 0, "the first launcher powers its VM off and exits 0: \(vm1.process.stderrLines.suffix(5))")
        #expect(vm1.process.lines.contains { $0.contains("KVMLAUNCH-POWEROFF") }, "the first guest shut down")
        #expect(!vm2.process.lines.contains { $0.contains("KVMLAUNCH-POWEROFF") }, "the second guest did not")
        #expect(second.pingFromPeer("10.77.0.2"), "the second VM still answers")
        let health = try vm2.status()
        #expect(health.status == 0 && health.stdout.contains("VM running"), "\(health.stdout)\(health.stderr)")
        let mark = vm2.process.lines.count
        vm2.process.send("echo still-$((20+3))\n")
        #expect(vm2.process.waitFor("still-23", after: mark, timeout: 60) != nil, "the second guest's console still works")
        #expect(Self.launcherDirectories(sharedRun).count == 1, "the first launcher removed its directory, the second's stays")
        try EndToEndTests().expectRestored(first, firstBefore)

        kill(pid2, SIGTERM)
        #expect(vm2.process.waitForExit(timeout: 90) == 0)
        #expect(vm2.process.lines.contains { $0.contains("KVMLAUNCH-POWEROFF") })
        #expect(Self.launcherDirectories(sharedRun).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: sharedRun + "/kvm-launch/qmp.sock"), "no QMP socket file in the shared /run")
        try EndToEndTests().expectRestored(second, secondBefore)
    }

    /// Issue 11 item 4: a 9000-MTU interface without an address reaches the guest as MTU 9000
    /// (virtio host_mtu; no DHCP answer on that NIC), next to one with DHCP.
    @Test func aJumboInterfaceWithoutAnAddressHasItsMTUInTheGuest() throws {
        try EndToEndTests.requireImage()
        let fixture = try ContainerFixture([
            .init(name: "eth0", addresses: ["10.88.0.2/24"], peerAddress: "10.88.0.1/24", defaultRoute: true),
            .init(name: "eth1", addresses: [], mtu: 9000),
        ])
        defer { fixture.destroy() }
        let before = try fixture.state()
        let eth1MAC = try fixture.mac(of: "eth1"), eth0MAC = try fixture.mac(of: "eth0")

        let vm = try EndToEndTests.VMRun(fixture, environment: ["AUTO_ATTACH": "yes"])
        defer { vm.stop() }
        let nics = try vm.waitUntilReady(timeout: 240)
        let jumbo = try #require(nics.first { $0.mac == eth1MAC }, "\(nics)")
        #expect(jumbo.mtu == "9000", "the guest reads the MTU from the virtio NIC: \(jumbo.fields)")
        #expect(jumbo.address == "-", "no DHCP answer on an interface without an address")
        let plain = try #require(nics.first { $0.mac == eth0MAC })
        #expect(plain.mtu == "1500" && plain.address == "10.88.0.2/24")
        #expect(fixture.pingFromPeer("10.88.0.2"))

        vm.process.signal(SIGTERM)
        #expect(vm.process.waitForExit(timeout: 90) == 0)
        try EndToEndTests().expectRestored(fixture, before)
    }

    /// Issue 11 item 6: on a real terminal, typed commands reach the guest, Ctrl-C is the guest's
    /// and does not stop the container, and the terminal's settings are as before when kvm-launch
    /// exits — even when QEMU is SIGKILLed and cannot restore them itself.
    @Test func theConsoleOnARealTerminal() throws {
        try EndToEndTests.requireImage()
        let fixture = try ContainerFixture(EndToEndTests.oneInterface)
        defer { fixture.destroy() }
        let terminal = try PseudoTerminal()
        let before = terminal.settings()
        #expect(before.c_lflag & tcflag_t(ISIG) != 0 && before.c_lflag & tcflag_t(ICANON) != 0, "a fresh pty is cooked")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", fixture.container.name, kvmLaunchBinary]
        process.environment = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "AUTO_ATTACH": "yes",
                               "VM_ACCEL": "tcg", "VM_MEMORY": "256M", "VM_IMAGE": try EndToEndTests.VMRun.overlay(in: fixture),
                               "KVM_LAUNCH_RUN_DIR": fixture.directory.appendingPathComponent("run").path]
        let slave = FileHandle(fileDescriptor: terminal.slave, closeOnDealloc: false)
        process.standardInput = slave
        process.standardOutput = slave
        process.standardError = slave
        try process.run()
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        }

        try #require(terminal.waitFor("KVMLAUNCH-READY", timeout: 240), "the guest booted on the terminal: \(terminal.tail())")
        let raw = terminal.settings()
        #expect(raw.c_lflag & tcflag_t(ISIG) == 0 && raw.c_lflag & tcflag_t(ICANON) == 0, "QEMU put the terminal in raw mode")

        var mark = terminal.mark()
        terminal.type("echo pty-$((6*7))\n")
        #expect(terminal.waitFor("pty-42", after: mark, timeout: 60), "a typed command reached the guest: \(terminal.tail())")

        mark = terminal.mark()
        terminal.type("sh -c 'trap \"echo caught-\\$((6*7)); exit 0\" INT; echo loop-$((2*3)); while :; do sleep 1; done'\n")
        #expect(terminal.waitFor("loop-6", after: mark, timeout: 60), "the guest runs the loop: \(terminal.tail())")
        mark = terminal.mark()
        terminal.type("\u{03}")
        #expect(terminal.waitFor("caught-42", after: mark, timeout: 60), "Ctrl-C interrupted the guest's program: \(terminal.tail())")
        #expect(process.isRunning, "Ctrl-C did not stop the container")
        mark = terminal.mark()
        terminal.type("echo alive-$((5*5))\n")
        #expect(terminal.waitFor("alive-25", after: mark, timeout: 60), "the guest's shell is still there")

        // QEMU killed: it cannot put the terminal back, kvm-launch must.
        let qemu = try #require(Self.child(of: process.processIdentifier), "QEMU runs under kvm-launch")
        kill(qemu, SIGKILL)
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline { usleep(100_000) }
        #expect(!process.isRunning && process.terminationStatus != 0, "a killed QEMU is not a clean exit")
        let after = terminal.settings()
        #expect(after.c_iflag == before.c_iflag && after.c_oflag == before.c_oflag && after.c_cflag == before.c_cflag
                && after.c_lflag == before.c_lflag, "termios flags restored")
        #expect(withUnsafeBytes(of: after.c_cc) { Array($0) } == withUnsafeBytes(of: before.c_cc) { Array($0) }, "control characters restored")
    }

    /// The first child process of `pid` (any of its threads may have forked it).
    static func child(of pid: Int32) -> Int32? {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        for task in tasks {
            let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? ""
            if let first = children.split(separator: " ").first.flatMap({ Int32($0) }) { return first }
        }
        return nil
    }
}

/// A pseudo-terminal opened by the test: the launcher gets the slave as stdin/stdout/stderr, the
/// test types into and reads from the master.
final class PseudoTerminal: @unchecked Sendable {  // `output` is guarded by `condition`
    let master: Int32
    let slave: Int32
    private let condition = NSCondition()
    private var output: [UInt8] = []
    private var closed = false

    init() throws {
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard master >= 0 else { throw EndToEndTests.Failure("cannot open /dev/ptmx") }
        var unlock: Int32 = 0, number: UInt32 = 0
        guard ioctl(master, 0x4004_5431, &unlock) == 0, ioctl(master, 0x8004_5430, &number) == 0 else {  // TIOCSPTLCK, TIOCGPTN
            close(master)
            throw EndToEndTests.Failure("cannot unlock the pty")
        }
        slave = open("/dev/pts/\(number)", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard slave >= 0 else {
            close(master)
            throw EndToEndTests.Failure("cannot open /dev/pts/\(number)")
        }
        let master = self.master
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(master, &buffer, buffer.count)
                condition.lock()
                if count <= 0 {
                    closed = true
                    condition.broadcast()
                    condition.unlock()
                    return
                }
                output += buffer[0..<count]
                condition.broadcast()
                condition.unlock()
            }
        }
    }

    deinit {
        close(slave)
        close(master)
    }

    func settings() -> termios {
        var value = termios()
        tcgetattr(slave, &value)
        return value
    }

    func type(_ text: String) {
        _ = text.utf8CString.withUnsafeBufferPointer { write(master, $0.baseAddress, $0.count - 1) }
    }

    func mark() -> Int {
        condition.lock()
        defer { condition.unlock() }
        return output.count
    }

    func tail() -> String {
        condition.lock()
        defer { condition.unlock() }
        return String(decoding: output.suffix(2000), as: UTF8.self)
    }

    /// Waits (bounded) until `text` appears in the output after byte `start`.
    func waitFor(_ text: String, after start: Int = 0, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        let needle = Array(text.utf8)
        while true {
            if output.count >= needle.count, start <= output.count - needle.count,
               (start...(output.count - needle.count)).contains(where: { output[$0..<($0 + needle.count)].elementsEqual(needle) }) {
                return true
            }
            if closed || !condition.wait(until: deadline) { return false }
        }
    }
}
