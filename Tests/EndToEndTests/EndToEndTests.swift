import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Boots the real test guest (image/build.sh) under real QEMU (TCG here) inside a simulated
/// container and checks what a user would: the guest's own console lines, pings from the
/// network, the exit status, and the container's links/addresses/routes afterwards.
@Suite(.serialized, .enabled(if: isRoot, "needs root: makes network namespaces, macvtaps and bridges, and runs QEMU"))
struct EndToEndTests {
    /// kvm-launch in the container namespace with the guest on a private copy-on-write overlay.
    final class VMRun: @unchecked Sendable {  // only used from the test's own thread
        let fixture: ContainerFixture
        let process: ConsoleProcess
        let runDirectory: String

        /// - Parameter asContainer: start kvm-launch as a container runtime does (PID 1 of a new PID
        ///   namespace, a fresh /run with the default run directory) instead of under `ip netns exec`.
        init(_ fixture: ContainerFixture, environment: [String: String], arguments: [String] = [], image: String? = nil,
             asContainer: Bool = false) throws {
            self.fixture = fixture
            runDirectory = asContainer ? "/run/kvm-launch" : fixture.directory.appendingPathComponent("run").path
            var env = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                       "VM_ACCEL": "tcg", "VM_MEMORY": "256M", "VM_IMAGE": try image ?? Self.overlay(in: fixture)]
            if !asContainer { env["KVM_LAUNCH_RUN_DIR"] = runDirectory }
            env.merge(environment) { _, new in new }
            if asContainer {
                process = try fixture.startAsContainer([kvmLaunchBinary] + arguments, environment: env)
            } else {
                process = try ConsoleProcess(["/usr/sbin/ip", "netns", "exec", fixture.container.name, kvmLaunchBinary] + arguments, environment: env)
            }
        }

        /// A qcow2 overlay on a copy of the test guest next to it (backing files must be in the image's
        /// folder), so every test boots a pristine disk of its own. Fails the test when qemu-img fails.
        static func overlay(in fixture: ContainerFixture) throws -> String {
            let path = fixture.directory.appendingPathComponent("disk.qcow2").path
            if !FileManager.default.fileExists(atPath: path) {
                let base = fixture.directory.appendingPathComponent("test-guest.qcow2").path
                if !FileManager.default.fileExists(atPath: base) { try FileManager.default.copyItem(atPath: testGuestImage, toPath: base) }
                try run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "test-guest.qcow2", "-F", "qcow2", path])
            }
            return path
        }

        /// The guest's NIC lines, once it printed KVMLAUNCH-READY.
        func waitUntilReady(timeout: TimeInterval = 120) throws -> [GuestNIC] {
            guard process.waitFor("KVMLAUNCH-READY", timeout: timeout) != nil else {
                throw Failure("the guest did not print KVMLAUNCH-READY; console:\n\(process.lines.suffix(40).joined(separator: "\n"))\nstderr:\n\(process.stderrLines.suffix(20).joined(separator: "\n"))")
            }
            return process.lines.compactMap(GuestNIC.init(line:))
        }

        func stop() { process.stop() }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// The container's state equals the snapshot; on a difference, the differing lines are shown.
    func expectRestored(_ fixture: ContainerFixture, _ before: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let after = try fixture.state()
        let old = Set(before.split(separator: "\n")), new = Set(after.split(separator: "\n"))
        #expect(after == before, "the container's links, addresses and routes are as they were; only before: \(old.subtracting(new).sorted()); only after: \(new.subtracting(old).sorted())", sourceLocation: sourceLocation)
    }

    static func requireImage() throws {
        guard FileManager.default.fileExists(atPath: testGuestImage) else {
            throw Failure("no test guest at \(testGuestImage): run image/build.sh (make test does it first)")
        }
    }

    static let oneInterface = [ContainerFixture.Interface(name: "eth0", addresses: ["10.88.0.2/24"], peerAddress: "10.88.0.1/24", defaultRoute: true)]

    @Test func macvtapGuestGetsContainerIdentityConsoleWorksAndDiskSurvivesGracefulStop() throws {
        try Self.requireImage()
        let fixture = try ContainerFixture(Self.oneInterface)
        defer { fixture.destroy() }
        let before = try fixture.state()
        let originalMAC = try fixture.mac(of: "eth0")

        let vm = try VMRun(fixture, environment: ["AUTO_ATTACH": "yes"])
        defer { vm.stop() }
        let nics = try vm.waitUntilReady()
        try #require(nics.count == 1)
        #expect(nics[0].mac == originalMAC)
        #expect(nics[0].address == "10.88.0.2/24")
        #expect(nics[0].gateway == "10.88.0.1")
        #expect(nics[0].dns == "192.0.2.53")
        #expect(nics[0].search == "example.test,corp.example.test")
        #expect(nics[0].mtu == "1500")
        #expect(try fixture.mac(of: "eth0") != originalMAC, "the container interface has a new MAC")

        #expect(fixture.pingFromPeer("10.88.0.2"), "the VM answers on the container's address")
        // The health check asks QEMU over QMP.
        let health = try fixture.container.exec([kvmLaunchBinary, "status"], environment: ["KVM_LAUNCH_RUN_DIR": vm.runDirectory], check: false)
        #expect(health.status == 0)
        #expect(health.stdout.contains("VM running"))
        #expect(try fixture.peerNeighbourMAC("10.88.0.2") == originalMAC, "with the container's MAC")

        // The console is the container's stdio: a command typed in comes back with its answer.
        let mark = vm.process.lines.count
        vm.process.send("echo console-$((6*7))\n")
        #expect(vm.process.waitFor("console-42", after: mark, timeout: 30) != nil)
        vm.process.send("marker-write survived-\(fixture.container.name)\n")
        #expect(vm.process.waitFor("KVMLAUNCH-MARKER-WRITTEN=survived-\(fixture.container.name)", after: mark, timeout: 30) != nil)

        vm.process.signal(SIGTERM)
        let status = vm.process.waitForExit(timeout: 60)
        #expect(status == 0, "graceful power-off exits 0; stderr: \(vm.process.stderrLines.suffix(5))")
        #expect(vm.process.lines.contains { $0.contains("KVMLAUNCH-POWEROFF") }, "the guest shut itself down")
        let gone = try fixture.container.exec([kvmLaunchBinary, "status"], environment: ["KVM_LAUNCH_RUN_DIR": vm.runDirectory], check: false)
        #expect(gone.status != 0, "no VM, unhealthy")
        try expectRestored(fixture, before)

        // Boot the same disk again: the marker is there and the image is consistent.
        let check = try run(["qemu-img", "check", try VMRun.overlay(in: fixture)], check: false)
        #expect(check.status == 0, "qemu-img check: \(check.stdout)")
        let again = try VMRun(fixture, environment: ["AUTO_ATTACH": "yes"])
        defer { again.stop() }
        _ = try again.waitUntilReady()
        #expect(again.process.lines.contains { $0.contains("KVMLAUNCH-MARKER=survived-\(fixture.container.name)") })
        again.process.signal(SIGTERM)
        #expect(again.process.waitForExit(timeout: 60) == 0)
        try expectRestored(fixture, before)
    }

    @Test func bridgeModeWithTwoInterfaces() throws {
        try Self.requireImage()
        let fixture = try ContainerFixture([
            .init(name: "eth0", addresses: ["10.88.0.2/24"], peerAddress: "10.88.0.1/24", defaultRoute: true),
            .init(name: "eth1", addresses: ["10.99.5.2/24"], peerAddress: "10.99.5.1/24"),
        ])
        defer { fixture.destroy() }
        let before = try fixture.state()
        let macs = [try fixture.mac(of: "eth0"), try fixture.mac(of: "eth1")]

        let vm = try VMRun(fixture, environment: ["AUTO_ATTACH": "yes", "USE_NET_BRIDGES": "yes"])
        defer { vm.stop() }
        let nics = try vm.waitUntilReady()
        try #require(nics.count == 2)
        #expect(nics.map(\.mac) == macs.map(Optional.init), "NIC order is interface order")
        #expect(nics.map(\.address) == ["10.88.0.2/24", "10.99.5.2/24"])
        #expect(nics[0].gateway == "10.88.0.1")
        #expect(fixture.pingFromPeer("10.88.0.2"))
        #expect(fixture.pingFromPeer("10.99.5.2"))
        #expect(try fixture.peerNeighbourMAC("10.99.5.2") == macs[1])

        vm.process.signal(SIGTERM)
        #expect(vm.process.waitForExit(timeout: 60) == 0)
        try expectRestored(fixture, before)
    }

    @Test func attachIfacesAndSelectedNetwork() throws {
        try Self.requireImage()
        let fixture = try ContainerFixture([
            .init(name: "eth0", addresses: ["10.88.0.2/24"], peerAddress: "10.88.0.1/24", defaultRoute: true),
            .init(name: "eth1", addresses: ["10.70.0.2/24", "10.71.0.2/24"], peerAddress: "10.71.0.1/24"),
        ])
        defer { fixture.destroy() }
        let before = try fixture.state()
        let eth1MAC = try fixture.mac(of: "eth1")
        let eth0MAC = try fixture.mac(of: "eth0")

        let vm = try VMRun(fixture, environment: ["AUTO_ATTACH": "no", "ATTACH_IFACES": "eth1", "SELECTED_NETWORK": "10.71.0.0/24"])
        defer { vm.stop() }
        let nics = try vm.waitUntilReady()
        try #require(nics.count == 1, "only eth1 is attached")
        #expect(nics[0].mac == eth1MAC)
        #expect(nics[0].address == "10.71.0.2/24")
        #expect(fixture.pingFromPeer("10.71.0.2"))
        #expect(try fixture.mac(of: "eth0") == eth0MAC, "eth0 is left alone")

        vm.process.signal(SIGTERM)
        #expect(vm.process.waitForExit(timeout: 60) == 0)
        try expectRestored(fixture, before)
    }

    @Test func guestIgnoringThePowerButtonIsStoppedAfterTheTimeout() throws {
        try Self.requireImage()
        let fixture = try ContainerFixture(Self.oneInterface)
        defer { fixture.destroy() }
        let before = try fixture.state()
        // The CMD reaches QEMU verbatim: this fw_cfg entry tells the test guest to ignore ACPI.
        let vm = try VMRun(fixture, environment: ["AUTO_ATTACH": "yes", "VM_SHUTDOWN_TIMEOUT": "3"],
                           arguments: ["-fw_cfg", "name=opt/kvmlaunch/ignore-acpi,string=1"])
        defer { vm.stop() }
        _ = try vm.waitUntilReady()
        #expect(vm.process.lines.contains { $0.contains("KVMLAUNCH-ACPI-IGNORE=on") })
        vm.process.signal(SIGTERM)
        let status = vm.process.waitForExit(timeout: 60)
        #expect(status != nil && status != 0, "a guest that did not power off is not a clean exit")
        #expect(vm.process.stderrLines.contains { $0.contains("did not power off in time") })
        #expect(!vm.process.lines.contains { $0.contains("KVMLAUNCH-POWEROFF") })
        try expectRestored(fixture, before)
    }

    @Test func stopDuringEarlyBootStillPowersOffCleanly() throws {
        try Self.requireImage()
        let fixture = try ContainerFixture(Self.oneInterface)
        defer { fixture.destroy() }
        let before = try fixture.state()
        let vm = try VMRun(fixture, environment: ["AUTO_ATTACH": "yes"])
        defer { vm.stop() }
        // SIGTERM as soon as QEMU runs, long before the guest's ACPI daemon listens: the press is
        // repeated until the guest acts on it.
        #expect(vm.process.waitForLine(onStderr: true, timeout: 60) { $0.contains("started /") } != nil)
        vm.process.signal(SIGTERM)
        #expect(vm.process.waitForExit(timeout: 90) == 0, "\(vm.process.stderrLines.suffix(12).joined(separator: "\n"))")
        #expect(vm.process.lines.contains { $0.contains("KVMLAUNCH-POWEROFF") })
        try expectRestored(fixture, before)
    }

    /// `VM_ACCEL=auto`: the accelerator QEMU runs with is the one this host offers, found by the test
    /// itself (/proc/cpuinfo flags and a KVM_CREATE_VM attempt): TCG with one warning line where KVM cannot
    /// run a guest (as here), KVM where it can. The disk reaches QEMU as a descriptor, never by path.
    @Test func autoAccelerationMatchesWhatTheHostOffers() throws {
        try Self.requireImage()
        let fixture = try ContainerFixture(Self.oneInterface)
        defer { fixture.destroy() }
        let before = try fixture.state()
        let vm = try VMRun(fixture, environment: ["AUTO_ATTACH": "yes", "VM_ACCEL": "auto"])
        defer { vm.stop() }
        _ = try vm.waitUntilReady()
        let started = try #require(vm.process.stderrLines.first { $0.contains("starting /") })
        let kvm = Self.hostCanRunKVMGuests()
        #expect(started.contains(kvm ? "accel=kvm" : "accel=tcg"), "\(started)")
        let warnings = vm.process.stderrLines.filter { $0.contains("KVM not usable") }
        #expect(warnings.count == (kvm ? 0 : 1), "\(vm.process.stderrLines)")
        #expect(warnings.allSatisfy { $0.contains("using TCG") })
        // QEMU got the checked image as a descriptor: no path of it on its command line.
        #expect(!started.contains("disk.qcow2") && started.contains("/dev/fdset/"), "\(started)")
        vm.process.signal(SIGTERM)
        #expect(vm.process.waitForExit(timeout: 60) == 0)
        try expectRestored(fixture, before)
    }

    /// Whether this host can run a KVM guest, found without kvm-launch's code: a vmx/svm CPU flag and
    /// a VM that /dev/kvm creates.
    static func hostCanRunKVMGuests() -> Bool {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let flags = Set((cpuinfo.components(separatedBy: "\n").first { $0.hasPrefix("flags") } ?? "").components(separatedBy: .whitespaces))
        guard flags.contains("vmx") || flags.contains("svm") else { return false }
        let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let vm = ioctl(fd, 0xAE01, 0)  // KVM_CREATE_VM
        guard vm >= 0 else { return false }
        close(vm)
        return true
    }

    @Test(arguments: ["missing", "corrupt", "no-qemu", "bad-setting"])
    func badInputFailsClearlyAndChangesNothing(_ fault: String) throws {
        let fixture = try ContainerFixture(Self.oneInterface)
        defer { fixture.destroy() }
        let before = try fixture.state()
        var environment = ["AUTO_ATTACH": "yes"]
        var image: String?
        switch fault {
        case "missing":
            image = fixture.directory.appendingPathComponent("nothing-here.qcow2").path
        case "corrupt":
            let path = fixture.directory.appendingPathComponent("corrupt.qcow2").path
            try Data("QFI\u{fb}\0\0\0\u{3}garbage".utf8).write(to: URL(fileURLWithPath: path))
            image = path
        case "no-qemu":
            environment["LAUNCHER"] = "/nonexistent/qemu-system-x86_64"
            image = fixture.directory.appendingPathComponent("blank.qcow2").path
            try run(["qemu-img", "create", "-q", "-f", "qcow2", image!, "16M"])
        default:
            environment["AUTO_ATTACH"] = "sometimes"
            environment["VM_CPUS"] = "many"
        }
        let vm = try VMRun(fixture, environment: environment, image: image)
        defer { vm.stop() }
        let status = vm.process.waitForExit(timeout: 30)
        #expect(status != nil && status != 0)
        let errors = vm.process.stderrLines.filter { $0.hasPrefix("Error:") }
        #expect(errors.count == 1, "one clear line: \(vm.process.stderrLines)")
        let expectation = ["missing": "nothing-here.qcow2", "corrupt": "corrupt.qcow2", "no-qemu": "qemu-system-x86_64",
                           "bad-setting": "AUTO_ATTACH"][fault]!
        #expect(errors.first?.contains(expectation) == true, "\(errors)")
        try expectRestored(fixture, before)
    }
}

/// `VM_NET_QUEUES`: a two-vCPU guest on a two-queue macvtap or bridge tap answers the peer and has two
/// queue pairs on its NIC.
@Suite(.serialized, .enabled(if: isRoot, "needs root: makes network namespaces, macvtaps and bridges, and runs QEMU"))
struct MultiqueueEndToEndTests {
    @Test(arguments: ["macvtap", "bridge"])
    func twoQueuesOnTwoVCPUs(_ mode: String) throws {
        try EndToEndTests.requireImage()
        let fixture = try ContainerFixture(EndToEndTests.oneInterface)
        defer { fixture.destroy() }
        let before = try fixture.state()
        let vm = try EndToEndTests.VMRun(fixture, environment: [
            "AUTO_ATTACH": "yes", "VM_CPUS": "2", "VM_NET_QUEUES": "2", "USE_NET_BRIDGES": mode == "bridge" ? "yes" : "no",
        ])
        defer { vm.stop() }
        let nics = try vm.waitUntilReady(timeout: 180)
        try #require(nics.count == 1)
        #expect(fixture.pingFromPeer("10.88.0.2"), "the VM answers on the container's address")
        #expect(vm.process.stderrLines.contains { $0.contains("fds=") && $0.contains("mq=on,vectors=6") },
                "QEMU was started with two queue descriptors and a multiqueue device: \(vm.process.stderrLines.filter { $0.contains("starting") })")
        if mode == "bridge" {
            // The kernel's own view of the tap: IFF_MULTI_QUEUE with both queues attached.
            let link = try fixture.container.exec(["ip", "-d", "link", "show", "type", "tun"])
            #expect(link.stdout.contains("multi_queue") && link.stdout.contains("numqueues 2"), "\(link.stdout)")
        }
        // The guest's own view: two receive and two transmit queues on its NIC.
        let mark = vm.process.lines.count
        vm.process.send("echo MQ-$(ls /sys/class/net/eth0/queues | tr '\\n' ,)\n")
        #expect(vm.process.waitFor("MQ-rx-0,rx-1,tx-0,tx-1,", after: mark, timeout: 60) != nil,
                "console: \(vm.process.lines.suffix(5))")
        vm.process.signal(SIGTERM)
        #expect(vm.process.waitForExit(timeout: 90) == 0)
        try EndToEndTests().expectRestored(fixture, before)
    }
}
