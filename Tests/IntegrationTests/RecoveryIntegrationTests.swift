import Foundation
import Testing
import TestSupport

/// Attach, teardown and SIGKILL recovery through the real binary in real namespaces, with a
/// `LAUNCHER` that exits at once instead of QEMU (so the whole attach → "QEMU" → teardown path
/// runs without booting anything). The stop of a real VM is in EndToEndTests.
@Suite(.serialized, .enabled(if: isRoot, needsRootReason))
struct RecoveryIntegrationTests {
    /// A container with Calico's shape: a /32, `169.254.1.1 dev eth0 scope link`, `default via 169.254.1.1`.
    static func calicoFixture() throws -> ContainerFixture {
        let fixture = try ContainerFixture([ContainerFixture.Interface(name: "eth0", addresses: ["10.244.1.9/32"], peerAddress: "169.254.1.1/32")])
        do {
            try fixture.container.ip("route add 169.254.1.1 dev eth0 scope link")
            try fixture.container.ip("route add default via 169.254.1.1 dev eth0")
            try fixture.container.ip("link set eth0 alias uplink-rack-7")
        } catch {
            fixture.destroy()
            throw error
        }
        return fixture
    }

    static func environment(_ fixture: ContainerFixture, mode: String, _ extra: [String: String] = [:]) throws -> [String: String] {
        let image = fixture.directory.appendingPathComponent("blank.qcow2").path
        if !FileManager.default.fileExists(atPath: image) { try run(["qemu-img", "create", "-q", "-f", "qcow2", image, "16M"]) }
        return ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "VM_ACCEL": "tcg", "VM_IMAGE": image, "LAUNCHER": "/bin/true",
                "AUTO_ATTACH": "yes", "USE_NET_BRIDGES": mode == "bridge" ? "yes" : "no",
                "KVM_LAUNCH_RUN_DIR": fixture.directory.appendingPathComponent("run").path].merging(extra) { _, new in new }
    }

    static func dryRun(_ fixture: ContainerFixture, _ environment: [String: String]) throws -> [String: Any] {
        let json = try fixture.container.exec([kvmLaunchBinary, "--dry-run", "--json"], environment: environment).stdout
        return try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    static func routes(_ fixture: ContainerFixture) throws -> [String] {
        try fixture.container.exec(["ip", "-4", "route", "show", "dev", "eth0"]).stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    @Test(arguments: ["macvtap", "bridge"])
    func calicoShapeIsRestoredAfterARun(_ mode: String) throws {
        let fixture = try Self.calicoFixture()
        defer { fixture.destroy() }
        let before = try fixture.state()
        #expect(try Self.routes(fixture).contains("default via 169.254.1.1"))
        let result = try fixture.container.exec([kvmLaunchBinary], environment: try Self.environment(fixture, mode: mode), check: false)
        #expect(result.stderr.contains("attached eth0"), "the attach ran: \(result.stderr)")
        #expect(result.stderr.contains("interfaces are restored"), "\(result.stderr)")
        #expect(try fixture.state() == before, "\(result.stderr)")
    }

    /// SIGKILL right after each attach step, then a new run: it recovers (the dry-run in between
    /// shows the recovery and the clean plan), attaches, and restores the start at its end.
    @Test(arguments: ["macvtap", "bridge"])
    func calicoShapeSurvivesSIGKILLAfterEveryStep(_ mode: String) throws {
        let fixture = try Self.calicoFixture()
        defer { fixture.destroy() }
        let before = try fixture.state()
        let environment = try Self.environment(fixture, mode: mode)
        let clean = try Self.dryRun(fixture, environment)
        let steps = try #require(clean["attachStepCount"] as? Int)
        #expect(steps == 8)
        #expect((clean["recovery"] as? [String])?.isEmpty == true)
        let cleanInterfaces = try #require(clean["interfaces"] as? [[String: Any]])

        for step in 1...steps {
            let killed = try fixture.container.exec([kvmLaunchBinary], environment: environment.merging(["KVM_LAUNCH_TEST_KILL_AFTER_STEP": "\(step)"]) { _, new in new }, check: false)
            #expect(killed.status == 128 + 9 || killed.status == 9 || killed.status == -9 || killed.status == 137, "killed at step \(step): status \(killed.status) \(killed.stderr)")
            #expect(try fixture.state() != before, "step \(step) changed something before the kill")

            let preview = try Self.dryRun(fixture, environment)
            #expect((preview["recovery"] as? [String])?.isEmpty == false, "the dry-run shows the recovery after step \(step)")
            let interfaces = try #require(preview["interfaces"] as? [[String: Any]])
            #expect(interfaces.first?["guestMAC"] as? String == cleanInterfaces.first?["guestMAC"] as? String, "after step \(step)")
            #expect(interfaces.first?["guestAddress"] as? String == "10.244.1.9/32", "after step \(step)")
            #expect(interfaces.first?["routes"] as? [[String: String]] == cleanInterfaces.first?["routes"] as? [[String: String]], "after step \(step)")

            let again = try fixture.container.exec([kvmLaunchBinary], environment: environment, check: false)
            #expect(again.stderr.contains("restored eth0"), "recovered after step \(step): \(again.stderr)")
            #expect(try fixture.state() == before, "restored exactly after a kill at step \(step): \(again.stderr)")
        }
    }

    /// Two addresses in one subnet: the kernel deletes the second (its secondary) with the first. Both are
    /// back, in their order, after a run and after a SIGKILL at any step and a new run.
    @Test func aSecondaryAddressSurvivesARunAndAKillAtAnyStep() throws {
        let fixture = try ContainerFixture([ContainerFixture.Interface(name: "eth0", addresses: ["10.88.0.2/24", "10.88.0.3/24"],
                                                                       peerAddress: "10.88.0.1/24", defaultRoute: true)])
        defer { fixture.destroy() }
        let before = try fixture.state()
        let environment = try Self.environment(fixture, mode: "macvtap")
        let run = try fixture.container.exec([kvmLaunchBinary], environment: environment, check: false)
        #expect(run.stderr.contains("attached eth0"), "\(run.stderr)")
        #expect(try fixture.state() == before, "\(run.stderr)")
        let order = try fixture.container.exec(["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
        let primary = try #require(order.range(of: "10.88.0.2/24"), "\(order)")
        let secondary = try #require(order.range(of: "10.88.0.3/24"), "the secondary is back: \(order)")
        #expect(primary.lowerBound < secondary.lowerBound, "still primary then secondary: \(order)")
        let steps = try #require(try Self.dryRun(fixture, environment)["attachStepCount"] as? Int)
        for step in 1...steps {
            _ = try fixture.container.exec([kvmLaunchBinary], environment: environment.merging(["KVM_LAUNCH_TEST_KILL_AFTER_STEP": "\(step)"]) { _, new in new }, check: false)
            let again = try fixture.container.exec([kvmLaunchBinary], environment: environment, check: false)
            #expect(again.stderr.contains("restored eth0"), "after step \(step): \(again.stderr)")
            #expect(try fixture.state() == before, "restored exactly after a kill at step \(step): \(again.stderr)")
        }
    }

    /// Issue 10 item 3: a link whose alias merely starts like kvm-launch's marker is someone else's.
    @Test func aForeignLinkWithALookalikeAliasIsNeverDeleted() throws {
        let fixture = try ContainerFixture([ContainerFixture.Interface(name: "eth0", addresses: ["10.88.0.2/24"], peerAddress: "10.88.0.1/24", defaultRoute: true)])
        defer { fixture.destroy() }
        try fixture.container.ip("link add ops0 type veth peer name ops1")
        try fixture.container.ip("link set ops0 alias kvm-launch:created-by-ops")
        try fixture.container.ip("link set ops0 up")
        let before = try fixture.state()
        let listing = try fixture.container.exec([kvmLaunchBinary, "--list-ifaces", "--json"], environment: ["AUTO_ATTACH": "no", "ATTACH_IFACES": "eth0"]).stdout
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listing.utf8)) as? [[String: Any]])
        #expect(rows.first { $0["name"] as? String == "ops0" }?["reason"] as? String == "not in ATTACH_IFACES", "not taken for kvm-launch's own")
        let result = try fixture.container.exec([kvmLaunchBinary], environment: try Self.environment(fixture, mode: "macvtap", ["AUTO_ATTACH": "no", "ATTACH_IFACES": "eth0"]), check: false)
        #expect(result.stderr.contains("attached eth0"), "\(result.stderr)")
        #expect(!result.stderr.contains("ops0"), "\(result.stderr)")
        #expect(try fixture.container.exec(["ip", "link", "show", "ops0"], check: false).status == 0, "ops0 is still there")
        #expect(try fixture.state() == before)
    }

    /// Issue 10 item 11: with AUTO_ATTACH=yes an up TUN device is skipped with a reason, and the launch goes on.
    @Test func anUpTunDeviceIsSkippedWithAReason() throws {
        let fixture = try ContainerFixture([ContainerFixture.Interface(name: "eth0", addresses: ["10.88.0.2/24"], peerAddress: "10.88.0.1/24", defaultRoute: true)])
        defer { fixture.destroy() }
        try fixture.container.ip("tuntap add dev kltun0 mode tun")
        try fixture.container.ip("link set kltun0 up")
        let listing = try fixture.container.exec([kvmLaunchBinary, "--list-ifaces", "--json"], environment: ["AUTO_ATTACH": "yes"]).stdout
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listing.utf8)) as? [[String: Any]])
        let tun = try #require(rows.first { $0["name"] as? String == "kltun0" })
        #expect(tun["attach"] as? Bool == false)
        #expect(tun["reason"] as? String == "not Ethernet")
        #expect(rows.first { $0["name"] as? String == "eth0" }?["attach"] as? Bool == true)
        let table = try fixture.container.exec([kvmLaunchBinary, "--list-ifaces"], environment: ["AUTO_ATTACH": "yes"]).stdout
        #expect(table.contains("no: not Ethernet"))
        let before = try fixture.state()
        let result = try fixture.container.exec([kvmLaunchBinary], environment: try Self.environment(fixture, mode: "macvtap"), check: false)
        #expect(result.stderr.contains("attached eth0"), "the launch went on: \(result.stderr)")
        #expect(!result.stderr.contains("kltun0"), "\(result.stderr)")
        #expect(try fixture.state() == before)
    }
}
