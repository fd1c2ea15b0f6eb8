import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// NIC order by name, interfaces without an address, MTUs on every link, and the launcher's own
/// run directory and QMP socket, through the real binary (QEMU started paused, no guest booted).
@Suite(.serialized, .enabled(if: isRoot, needsRootReason))
struct SharedRunIntegrationTests {
    static func environment(_ fixture: ContainerFixture, _ extra: [String: String]) throws -> [String: String] {
        try AttachIntegrationTests.environment(fixture, extra)
    }

    static func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    static func index(_ fixture: ContainerFixture, _ name: String) throws -> Int {
        Int(try fixture.container.exec(["cat", "/sys/class/net/\(name)/ifindex"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    static func mtu(_ fixture: ContainerFixture, _ name: String) throws -> String {
        try fixture.container.exec(["cat", "/sys/class/net/\(name)/mtu"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Podman can create eth1 before eth0: AUTO_ATTACH=yes still makes eth0 the first NIC.
    @Test func autoAttachOrdersByNameWhenEth1IsCreatedFirst() throws {
        let fixture = try ContainerFixture([
            .init(name: "eth1", addresses: ["10.99.0.2/24"], peerAddress: "10.99.0.1/24"),
            .init(name: "eth0", addresses: ["10.88.0.2/24"], peerAddress: "10.88.0.1/24", defaultRoute: true),
        ])
        defer { fixture.destroy() }
        try #require(try Self.index(fixture, "eth1") < Self.index(fixture, "eth0"), "the fixture made eth1 first")
        let environment = try Self.environment(fixture, ["AUTO_ATTACH": "yes"])

        let listing = try #require(try Self.json(fixture.container.exec([kvmLaunchBinary, "--list-ifaces", "--json"], environment: environment).stdout) as? [[String: Any]])
        let nics = Dictionary(uniqueKeysWithValues: listing.map { ($0["name"] as? String ?? "", $0["nic"] as? Int) })
        #expect(nics["eth0"] == 0 && nics["eth1"] == 1, "\(nics)")
        let text = try fixture.container.exec([kvmLaunchBinary, "--list-ifaces"], environment: environment).stdout
        #expect(text.contains("NIC order: AUTO_ATTACH=yes orders NICs by name: eth0, eth1"), "\(text)")

        let plan = try #require(try Self.json(fixture.container.exec([kvmLaunchBinary, "--dry-run", "--json"], environment: environment).stdout) as? [String: Any])
        let interfaces = try #require(plan["interfaces"] as? [[String: Any]])
        #expect(interfaces.map { $0["name"] as? String } == ["eth0", "eth1"])
        let qemu = try #require(plan["qemu"] as? [String])
        let eth0MAC = try fixture.mac(of: "eth0")
        #expect(qemu.contains { $0.hasPrefix("virtio-net-pci,netdev=net0,mac=\(eth0MAC)") }, "\(qemu)")

        // ATTACH_IFACES keeps the order it is given.
        let named = try Self.environment(fixture, ["AUTO_ATTACH": "no", "ATTACH_IFACES": "eth1 eth0"])
        let namedPlan = try #require(try Self.json(fixture.container.exec([kvmLaunchBinary, "--dry-run", "--json"], environment: named).stdout) as? [String: Any])
        #expect((namedPlan["interfaces"] as? [[String: Any]])?.map { $0["name"] as? String } == ["eth1", "eth0"])
    }

    /// An L2-only 9000-MTU interface (a provider network, a Multus L2 network): attached with its
    /// MAC, its link and its MTU, and the listing and the plan say there is no DHCP answer on it.
    @Test func anInterfaceWithoutAnAddressIsAttachedAndSaysSo() throws {
        let fixture = try ContainerFixture([
            .init(name: "eth0", addresses: ["10.88.0.2/24"], peerAddress: "10.88.0.1/24", defaultRoute: true),
            .init(name: "eth1", addresses: [], mtu: 9000),
        ])
        defer { fixture.destroy() }
        let environment = try Self.environment(fixture, ["AUTO_ATTACH": "yes"])

        let listing = try #require(try Self.json(fixture.container.exec([kvmLaunchBinary, "--list-ifaces", "--json"], environment: environment).stdout) as? [[String: Any]])
        let eth1 = try #require(listing.first { $0["name"] as? String == "eth1" })
        #expect(eth1["attach"] as? Bool == true && eth1["linkOnly"] as? Bool == true && eth1["mtu"] as? Int == 9000)
        #expect(listing.first { $0["name"] as? String == "eth0" }?["linkOnly"] as? Bool == false)
        let text = try fixture.container.exec([kvmLaunchBinary, "--list-ifaces"], environment: environment).stdout
        let row = try #require(text.split(separator: "\n").first { $0.contains(" eth1 ") })
        #expect(row.contains("yes (NIC 1; no IPv4: MAC and link only, no DHCP answer)"), "\(row)")

        let dryRun = try fixture.container.exec([kvmLaunchBinary, "--dry-run"], environment: environment)
        #expect(dryRun.stdout.contains("DHCP           none: no IPv4 address, the VM gets the MAC and the link only"), "\(dryRun.stdout)")
        #expect(dryRun.stdout.contains("MTU            9000"))
        #expect(dryRun.stdout.contains("virtio-net-pci,netdev=net1,mac=\(try fixture.mac(of: "eth1")),host_mtu=9000"), "\(dryRun.stdout)")
        #expect(dryRun.stdout.contains("virtio-net-pci,netdev=net0,mac=\(try fixture.mac(of: "eth0")),host_mtu=1500"))
    }

    /// The launch for real with a paused QEMU: every link toward the VM has the interface's MTU,
    /// the run directory is this launcher's own `vm-…` (empty: nodes are removed once open) and
    /// gone afterwards, `status` answers in this network namespace and not in another.
    @Test(arguments: ["macvtap", "bridge"])
    func linksCarryTheMTUAndTheRunDirectoryIsPrivate(_ mode: String) throws {
        let fixture = try ContainerFixture([.init(name: "eth0", addresses: [], mtu: 9000)])
        defer { fixture.destroy() }
        let before = try fixture.state()
        let base = fixture.directory.appendingPathComponent("run").path
        // A directory an earlier launcher left (SIGKILLed: no lock) and one that is not ours by name.
        try FileManager.default.createDirectory(atPath: base + "/vm-00000000000000ab", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/keep-me", withIntermediateDirectories: true)
        chmod(base, 0o700)
        var environment = try Self.environment(fixture, ["AUTO_ATTACH": "yes", "USE_NET_BRIDGES": mode == "bridge" ? "yes" : "no",
                                                       "VM_SHUTDOWN_TIMEOUT": "1", "VM_MEMORY": "64"])
        environment["KVM_LAUNCH_RUN_DIR"] = base
        let launcher = try ConsoleProcess(["/usr/sbin/ip", "netns", "exec", fixture.container.name, kvmLaunchBinary, "-S"], environment: environment)
        defer { launcher.stop() }

        // QEMU (paused) answers once it is up, which is after the attach.
        var answer: ProcessResult?
        for _ in 0..<100 {
            let result = try fixture.container.exec([kvmLaunchBinary, "status"], environment: environment, check: false)
            if result.stdout.contains("VM prelaunch") || result.stdout.contains("VM paused") { answer = result; break }
            usleep(200_000)
        }
        try #require(answer != nil, "status never answered; launcher stderr: \(launcher.stderrLines.suffix(10))")
        #expect(answer?.status == 1, "a paused VM is not healthy")
        let other = try fixture.peer.exec([kvmLaunchBinary, "status"], environment: environment, check: false)
        #expect(other.status == 1 && other.stdout.contains("not reachable"), "another network namespace does not reach this QEMU: \(other.stdout)")

        let index = try Self.index(fixture, "eth0")
        #expect(try Self.mtu(fixture, "kltap\(index)") == "9000")
        #expect(try Self.mtu(fixture, mode == "bridge" ? "klbr\(index)" : "klsrv\(index)") == "9000")
        let entries = try FileManager.default.contentsOfDirectory(atPath: base).sorted()
        #expect(entries.count == 2 && entries.contains("keep-me"), "the abandoned directory went, ours is there: \(entries)")
        let own = try #require(entries.first { $0.hasPrefix("vm-") && $0 != "vm-00000000000000ab" })
        #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/" + own).isEmpty, "device nodes are removed once opened")

        // A second launcher in the same network and PID namespaces would share the QMP name: refused
        // before it changes anything.
        let during = try fixture.state()
        let second = try fixture.container.exec([kvmLaunchBinary, "-S"], environment: environment, check: false)
        #expect(second.status != 0 && second.stderr.contains("a VM already runs in this container's network and PID namespaces"), "\(second.stderr)")
        #expect(try fixture.state() == during, "the refused launcher changed nothing")
        #expect(try FileManager.default.contentsOfDirectory(atPath: base).count == 2, "nor made a run directory")
        #expect(launcher.waitForExit(timeout: 0.1) == nil, "the first launcher still runs")

        launcher.signal(SIGTERM)
        #expect(launcher.waitForExit(timeout: 30) != nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: base) == ["keep-me"], "the launcher's directory is removed at teardown")
        let after = try fixture.state()
        #expect(after == before, "only before: \(Set(before.split(separator: "\n")).subtracting(after.split(separator: "\n"))); only after: \(Set(after.split(separator: "\n")).subtracting(before.split(separator: "\n")))")
    }

    /// A relative or symlinked run directory is refused before anything changes, also by --dry-run.
    @Test func aBadRunDirectoryIsRefusedBeforeAnyChange() throws {
        let fixture = try ContainerFixture([.init(name: "eth0", addresses: ["10.88.0.2/24"], peerAddress: "10.88.0.1/24")])
        defer { fixture.destroy() }
        let before = try fixture.state()
        let target = fixture.directory.appendingPathComponent("target").path
        let link = fixture.directory.appendingPathComponent("link").path
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)

        let relative = try fixture.container.exec([kvmLaunchBinary, "--dry-run"], environment: try Self.environment(fixture, ["AUTO_ATTACH": "yes", "KVM_LAUNCH_RUN_DIR": "relrun"]), check: false)
        #expect(relative.status != 0 && relative.stderr.contains("KVM_LAUNCH_RUN_DIR") && relative.stderr.contains("absolute path"), "\(relative.stderr)")

        let linked = try fixture.container.exec([kvmLaunchBinary], environment: try Self.environment(fixture, ["AUTO_ATTACH": "yes", "KVM_LAUNCH_RUN_DIR": link + "/kvm-launch"]), check: false)
        #expect(linked.status != 0 && linked.stderr.contains("\(link) is a symbolic link"), "\(linked.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: target).isEmpty, "nothing made through the link")
        #expect(try fixture.state() == before)
    }
}
