import Foundation
import LibvirtBackend
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The test guest booted through libvirt (`VM_BACKEND=libvirt`) by the real kvm-launch binary in a
/// simulated container, with the real libvirtd it starts: what a user checks with ping, the
/// console, `virsh` and `docker stop`, and that a killed launcher leaves no QEMU behind.
@Suite(.serialized, .enabled(if: isRoot, "needs root: makes network namespaces and macvtaps, starts libvirtd and QEMU"))
struct LibvirtEndToEndTests {
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    final class Run: @unchecked Sendable {  // used from the test's thread only
        let fixture: ContainerFixture
        let process: ConsoleProcess
        let runDirectory: String
        var configuration: PrivateConfiguration { PrivateConfiguration(runDirectory: runDirectory) }

        init(_ fixture: ContainerFixture, environment: [String: String] = [:], arguments: [String] = []) throws {
            self.fixture = fixture
            runDirectory = fixture.directory.appendingPathComponent("run").path
            let disk = fixture.directory.appendingPathComponent("disk.qcow2").path
            // An overlay on a copy of the guest next to it (backing files must be in the image's folder).
            if !FileManager.default.fileExists(atPath: disk) {
                let base = fixture.directory.appendingPathComponent("test-guest.qcow2").path
                if !FileManager.default.fileExists(atPath: base) { try FileManager.default.copyItem(atPath: testGuestImage, toPath: base) }
                try run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "test-guest.qcow2", "-F", "qcow2", disk])
            }
            var env = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "KVM_LAUNCH_RUN_DIR": runDirectory,
                       "VM_ACCEL": "tcg", "VM_MEMORY": "256M", "VM_IMAGE": disk, "VM_BACKEND": "libvirt", "AUTO_ATTACH": "yes",
                       "VM_HOSTNAME": "vm-\(fixture.container.name)"]
            env.merge(environment) { _, new in new }
            process = try ConsoleProcess(["/usr/sbin/ip", "netns", "exec", fixture.container.name, kvmLaunchBinary] + arguments, environment: env)
        }

        func waitUntilReady(timeout: TimeInterval = 240) throws {
            guard process.waitFor("KVMLAUNCH-READY", timeout: timeout) != nil else {
                throw Failure("the guest did not print KVMLAUNCH-READY; console:\n\(process.lines.suffix(30).joined(separator: "\n"))\nstderr:\n\(process.stderrLines.suffix(20).joined(separator: "\n"))")
            }
        }

        /// virsh inside the container's namespace with the URI the image sets as the default.
        func virsh(_ arguments: [String]) throws -> ProcessResult {
            try fixture.container.exec(["virsh"] + arguments, environment: ["LIBVIRT_DEFAULT_URI": configuration.uri, "PATH": "/usr/bin:/bin"], check: false)
        }

        /// QEMU processes running this test's disk.
        func qemuProcesses() -> [pid_t] {
            let disk = fixture.directory.appendingPathComponent("disk.qcow2").path
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            return entries.compactMap { pid_t($0) }.filter { pid in
                guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
                let words = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
                return (words.first ?? "").contains("qemu-system") && words.contains { $0.contains(disk) }
            }
        }

        /// libvirtd or virtlogd of this run, if still there (from their pid files).
        func daemonsAlive() -> [pid_t] {
            [configuration.libvirtdPidFile, configuration.virtlogdPidFile].compactMap { file in
                guard let text = try? String(contentsOfFile: file, encoding: .utf8), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                      let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8),
                      comm.hasPrefix("libvirtd") || comm.hasPrefix("virtlogd") else { return nil }
                let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
                return stat.contains(") Z ") ? nil : pid
            }
        }

        /// Last resort for a failed test: nothing of this run may outlive it.
        func cleanUp() {
            process.stop()
            for pid in daemonsAlive() + qemuProcesses() { kill(pid, SIGKILL) }
        }
    }

    static func requireImage() throws {
        guard FileManager.default.fileExists(atPath: testGuestImage) else {
            throw Failure("no test guest at \(testGuestImage): run `make guest` (make test does it first)")
        }
    }

    static let oneInterface = [ContainerFixture.Interface(name: "eth0", addresses: ["10.89.0.2/24"], peerAddress: "10.89.0.1/24", defaultRoute: true)]

    func expectRestored(_ fixture: ContainerFixture, _ before: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let after = try fixture.state()
        let old = Set(before.split(separator: "\n")), new = Set(after.split(separator: "\n"))
        #expect(after == before, "restored; only before: \(old.subtracting(new).sorted()); only after: \(new.subtracting(old).sorted())", sourceLocation: sourceLocation)
    }

    /// Waits (bounded) until `condition` holds.
    func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(200_000)
        }
        return condition()
    }

    @Test func guestOnTheContainersIdentityConsoleVirshAndGracefulStop() throws {
        try Self.requireImage()
        let fixture = try ContainerFixture(Self.oneInterface)
        defer { fixture.destroy() }
        let before = try fixture.state()
        let originalMAC = try fixture.mac(of: "eth0")
        let vm = try Run(fixture)
        defer { vm.cleanUp() }
        try vm.waitUntilReady()

        let nics = vm.process.lines.compactMap(GuestNIC.init(line:))
        try #require(nics.count == 1)
        #expect(nics[0].mac == originalMAC, "the guest NIC has the container's MAC")
        #expect(nics[0].address == "10.89.0.2/24")
        #expect(nics[0].mtu == "1500")
        #expect(fixture.pingFromPeer("10.89.0.2"), "the VM answers on the container's address")
        #expect(try fixture.peerNeighbourMAC("10.89.0.2") == originalMAC, "with the container's MAC")

        let mark = vm.process.lines.count
        vm.process.send("echo console-$((6*7))\n")
        #expect(vm.process.waitFor("console-42", after: mark, timeout: 60) != nil, "a typed command answers on the console")

        let list = try vm.virsh(["list"])
        #expect(list.status == 0, "virsh list: \(list.stderr)")
        #expect(list.stdout.contains("vm-\(fixture.container.name)") && list.stdout.contains("running"), "virsh list shows the domain: \(list.stdout)")
        let xml = try vm.virsh(["dumpxml", "vm-\(fixture.container.name)"])
        #expect(xml.stdout.contains("<mac address='\(originalMAC)'/>"), "dumpxml shows the NIC")
        #expect(xml.stdout.range(of: "<target dev='kltap[0-9]+' managed='no'/>", options: .regularExpression) != nil, "on kvm-launch's macvtap, unmanaged")
        let status = try fixture.container.exec([kvmLaunchBinary, "status"],
                                                environment: ["KVM_LAUNCH_RUN_DIR": vm.runDirectory, "VM_BACKEND": "libvirt"], check: false)
        #expect(status.status == 0 && status.stdout.contains("VM running"), "kvm-launch status asks libvirt: \(status.stdout)")

        // kvm-launch replaced itself with kvm-launch-libvirt: the same process (PID 1 in a container).
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(vm.process.pid)/exe")) ?? ""
        #expect(executable.hasSuffix("/kvm-launch-libvirt"), "the launcher's process runs kvm-launch-libvirt: \(executable)")

        vm.process.signal(SIGTERM)
        let exit = vm.process.waitForExit(timeout: 90)
        #expect(exit == 0, "SIGTERM powers the guest off and exits 0; stderr: \(vm.process.stderrLines.suffix(8))")
        #expect(vm.process.lines.contains { $0.contains("KVMLAUNCH-POWEROFF") }, "the guest shut itself down")
        #expect(vm.qemuProcesses().isEmpty, "no QEMU left")
        #expect(vm.daemonsAlive().isEmpty, "libvirtd and virtlogd are gone")
        try expectRestored(fixture, before)
    }

    /// CLOUD_INIT with VM_BACKEND=libvirt: the seed is written once into this launcher's own run directory and
    /// given to libvirt as a read-only raw disk; the guest reads the `cidata` volume from it; it goes at teardown.
    @Test func theGuestSeesTheCloudInitSeedAndTheFileGoesAtTeardown() throws {
        try Self.requireImage()
        let fixture = try ContainerFixture(Self.oneInterface)
        defer { fixture.destroy() }
        let before = try fixture.state()
        let vm = try Run(fixture, environment: ["CLOUD_INIT": "yes"])
        defer { vm.cleanUp() }
        try vm.waitUntilReady()

        let seeds = ((try? FileManager.default.contentsOfDirectory(atPath: vm.runDirectory)) ?? [])
            .filter { $0.hasPrefix("vm-") }
            .map { "\(vm.runDirectory)/\($0)/cloud-init-seed.iso" }
            .filter { FileManager.default.fileExists(atPath: $0) }
        #expect(seeds.count == 1, "one seed file in this launcher's own directory: \(seeds)")
        if let seed = seeds.first {
            let attributes = try FileManager.default.attributesOfItem(atPath: seed)
            #expect((attributes[.posixPermissions] as? Int) == 0o400, "read-only for its owner")
            let xml = try vm.virsh(["dumpxml", "vm-\(fixture.container.name)"]).stdout
            // The <disk> element naming the seed: raw, read-only, the second virtio disk.
            let disk = xml.components(separatedBy: "<disk ").first { $0.contains("<source file='\(seed)'") }?
                .components(separatedBy: "</disk>").first ?? ""
            #expect(disk.contains("<driver name='qemu' type='raw'/>") && disk.contains("<readonly/>")
                    && disk.contains("<target dev='vdb' bus='virtio'/>"), "the domain's seed disk is that file, raw, read-only: \(xml)")
        }
        // The ISO 9660 volume label (at byte 32808 of the disk) of each virtio disk, and whether it is read-only.
        let mark = vm.process.lines.count
        vm.process.send("for d in vda vdb; do echo seed-$d-$(cat /sys/block/$d/ro)-$(dd if=/dev/$d bs=1 skip=32808 count=6 2>/dev/null); done\n")
        let line = vm.process.waitFor("-1-cidata", after: mark, timeout: 60)
        #expect(line?.contains("seed-vdb-1-cidata") == true, "the guest sees the cidata volume on a read-only disk: \(vm.process.lines.suffix(6))")

        vm.process.signal(SIGTERM)
        #expect(vm.process.waitForExit(timeout: 90) == 0, "stderr: \(vm.process.stderrLines.suffix(8))")
        #expect(seeds.allSatisfy { !FileManager.default.fileExists(atPath: $0) }, "the seed file is gone")
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: vm.runDirectory)) ?? []).filter { $0.hasPrefix("vm-") }
        #expect(left.isEmpty, "this launcher's run directory is removed: \(left)")
        #expect(vm.qemuProcesses().isEmpty)
        try expectRestored(fixture, before)
    }

    @Test func sigkillLeavesNoQEMUAndTheNextStartRecovers() throws {
        try Self.requireImage()
        let fixture = try ContainerFixture(Self.oneInterface)
        defer { fixture.destroy() }
        let before = try fixture.state()
        let first = try Run(fixture)
        defer { first.cleanUp() }
        try first.waitUntilReady()
        #expect(!first.qemuProcesses().isEmpty, "QEMU runs")
        first.process.signal(SIGKILL)
        _ = first.process.waitForExit(timeout: 30)
        #expect(eventually(30) { first.qemuProcesses().isEmpty }, "auto-destroy: QEMU is gone once kvm-launch's connection closed")

        let second = try Run(fixture)
        defer { second.cleanUp() }
        try second.waitUntilReady()
        #expect(second.process.stderrLines.contains { $0.contains("restored eth0") || $0.contains("restored") }, "the interface left attached was restored first")
        #expect(fixture.pingFromPeer("10.89.0.2"), "the VM answers again")
        second.process.signal(SIGTERM)
        #expect(second.process.waitForExit(timeout: 90) == 0, "stderr: \(second.process.stderrLines.suffix(12).joined(separator: "\n"))")
        #expect(second.qemuProcesses().isEmpty)
        #expect(second.daemonsAlive().isEmpty)
        try expectRestored(fixture, before)
    }

    @Test func aDomainLibvirtRejectsIsOneLineAndTheNetworkIsRestored() throws {
        try Self.requireImage()
        let fixture = try ContainerFixture(Self.oneInterface)
        defer { fixture.destroy() }
        let before = try fixture.state()
        // A CMD word QEMU refuses: libvirt starts QEMU, QEMU exits at once, libvirt says why.
        let vm = try Run(fixture, arguments: ["-device", "no-such-device-kl"])
        defer { vm.cleanUp() }
        let status = vm.process.waitForExit(timeout: 120)
        #expect(status != nil && status != 0, "non-zero exit")
        let errorLines = vm.process.stderrLines.filter { $0.contains("libvirt refused the domain") }
        #expect(errorLines.count == 1, "one line with libvirt's reason: \(vm.process.stderrLines.suffix(6))")
        #expect(errorLines.first?.contains("no-such-device-kl") == true, "the reason names the bad device")
        #expect(vm.qemuProcesses().isEmpty)
        #expect(vm.daemonsAlive().isEmpty, "the daemons are gone")
        try expectRestored(fixture, before)
    }
}
