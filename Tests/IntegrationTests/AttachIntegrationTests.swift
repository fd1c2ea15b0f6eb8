import Foundation
import Testing
import TestSupport

/// The attach step through the real binary, without booting anything: failures part-way roll
/// back, and `--dry-run` plans without touching the namespace.
@Suite(.serialized, .enabled(if: isRoot, needsRootReason))
struct AttachIntegrationTests {
    static func environment(_ fixture: ContainerFixture, _ extra: [String: String]) throws -> [String: String] {
        let image = fixture.directory.appendingPathComponent("blank.qcow2").path
        if !FileManager.default.fileExists(atPath: image) { try run(["qemu-img", "create", "-q", "-f", "qcow2", image, "16M"]) }
        return ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "VM_ACCEL": "tcg", "VM_IMAGE": image,
                "KVM_LAUNCH_RUN_DIR": fixture.directory.appendingPathComponent("run").path].merging(extra) { _, new in new }
    }

    static let twoInterfaces = [
        ContainerFixture.Interface(name: "eth0", addresses: ["10.88.0.2/24"], peerAddress: "10.88.0.1/24", defaultRoute: true),
        ContainerFixture.Interface(name: "eth1", addresses: ["10.70.0.2/24", "10.71.0.2/24"], peerAddress: "10.71.0.1/24"),
    ]

    @Test(arguments: ["macvtap", "bridge"])
    func nameClashPartWayRollsEverythingBack(_ mode: String) throws {
        let fixture = try ContainerFixture(Self.twoInterfaces)
        defer { fixture.destroy() }
        // The second interface's container-side link name is taken by a link kvm-launch did not make:
        // the first interface is fully attached by then and must be undone too.
        let eth1Index = try fixture.container.exec(["cat", "/sys/class/net/eth1/ifindex"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let clash = mode == "bridge" ? "klbr\(eth1Index)" : "klsrv\(eth1Index)"
        try fixture.container.ip("link add \(clash) type bridge")
        let before = try fixture.state()

        let result = try fixture.container.exec([kvmLaunchBinary], environment: try Self.environment(fixture, [
            "AUTO_ATTACH": "yes", "USE_NET_BRIDGES": mode == "bridge" ? "yes" : "no"]), check: false)
        #expect(result.status != 0)
        let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
        #expect(errors.count == 1, "\(result.stderr)")
        #expect(errors.first?.contains("cannot attach eth1") == true, "\(errors)")
        #expect(errors.first?.contains("every change was undone") == true, "\(errors)")
        let after = try fixture.state()
        #expect(after == before, "only before \(Set(before.split(separator: "\n")).subtracting(after.split(separator: "\n"))), only after \(Set(after.split(separator: "\n")).subtracting(before.split(separator: "\n")))")
    }

    @Test func dryRunShowsThePlanForTwoInterfacesAndChangesNothing() throws {
        let fixture = try ContainerFixture(Self.twoInterfaces)
        defer { fixture.destroy() }
        let before = try fixture.state()
        let environment = try Self.environment(fixture, ["AUTO_ATTACH": "yes", "SELECTED_NETWORK": "10.71.0.0/24"])
        let text = try fixture.container.exec([kvmLaunchBinary, "--dry-run"], environment: environment).stdout
        #expect(text.contains("NIC 0: eth0"))
        #expect(text.contains("NIC 1: eth1"))
        #expect(text.contains("guest address  10.71.0.2/24"))
        #expect(text.contains("kept           10.70.0.2/24"))
        #expect(text.contains("router 10.88.0.1"))
        #expect(text.contains("search example.test,corp.example.test"))
        #expect(text.contains("-netdev"))

        let json = try fixture.container.exec([kvmLaunchBinary, "--dry-run", "--json"], environment: environment).stdout
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let interfaces = try #require(document["interfaces"] as? [[String: Any]])
        #expect(interfaces.map { $0["name"] as? String } == ["eth0", "eth1"])
        #expect(interfaces[0]["guestMAC"] as? String == (try fixture.mac(of: "eth0")))
        #expect(interfaces[1]["guestAddress"] as? String == "10.71.0.2/24")
        let lease = try #require(interfaces[0]["lease"] as? [String: Any])
        #expect(lease["router"] as? String == "10.88.0.1")
        #expect(lease["dnsServers"] as? [String] == ["192.0.2.53"])
        #expect(lease["mtu"] as? Int == 1500)
        let qemu = try #require(document["qemu"] as? [String])
        #expect(qemu.filter { $0 == "-netdev" }.count == 2)
        #expect(try fixture.state() == before)
    }

    /// VM_NET_QUEUES: each NIC takes a block of 2 × queues descriptors (taps, then vhost-net), the disk follows;
    /// `--dry-run` shows the very numbers a launch passes.
    @Test func dryRunShowsTheMultiqueueDescriptorLayout() throws {
        let fixture = try ContainerFixture(Self.twoInterfaces)
        defer { fixture.destroy() }
        let vhost = FileManager.default.isReadableFile(atPath: "/dev/vhost-net")
        for (queues, cpus) in [("3", "1"), (nil, "2"), ("1", "4")] as [(String?, String)] {
            var extra = ["AUTO_ATTACH": "yes", "VM_CPUS": cpus]
            if let queues { extra["VM_NET_QUEUES"] = queues }
            let json = try fixture.container.exec([kvmLaunchBinary, "--dry-run", "--json"], environment: try Self.environment(fixture, extra)).stdout
            let document = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            let qemu = try #require(document["qemu"] as? [String])
            let netdevs = qemu.indices.dropLast().filter { qemu[$0] == "-netdev" }.map { qemu[$0 + 1] }
            let devices = qemu.indices.dropLast().filter { qemu[$0] == "-device" }.map { qemu[$0 + 1] }.filter { $0.hasPrefix("virtio-net-pci") }
            let diskFD = qemu.indices.dropLast().filter { qemu[$0] == "-add-fd" }.map { qemu[$0 + 1] }.first
            let count = Int(queues ?? cpus)!
            let interfaces = try #require(document["interfaces"] as? [[String: Any]])
            #expect(interfaces.map { $0["queues"] as? Int } == [count, count])
            if count == 1 {
                #expect(netdevs == ["tap,id=net0,fd=3" + (vhost ? ",vhost=on,vhostfd=4" : ""), "tap,id=net1,fd=5" + (vhost ? ",vhost=on,vhostfd=6" : "")])
                #expect(devices.allSatisfy { !$0.contains("mq=on") })
                #expect(diskFD == "fd=7,set=7")
            } else {
                func list(_ from: Int) -> String { (from..<from + count).map(String.init).joined(separator: ":") }
                #expect(netdevs == [0, 1].map { nic in
                    "tap,id=net\(nic),fds=\(list(3 + 2 * count * nic))" + (vhost ? ",vhost=on,vhostfds=\(list(3 + 2 * count * nic + count))" : "")
                }, "VM_NET_QUEUES=\(queues ?? "default"), VM_CPUS=\(cpus)")
                #expect(devices.allSatisfy { $0.hasSuffix(",mq=on,vectors=\(2 * count + 2)") }, "\(devices)")
                #expect(diskFD == "fd=\(3 + 4 * count),set=\(3 + 4 * count)", "the disk follows the NICs' blocks")
            }
        }
    }

    @Test func containerArgumentsReachQEMUVerbatimAfterOwnFlags() throws {
        let fixture = try ContainerFixture([Self.twoInterfaces[0]])
        defer { fixture.destroy() }
        let environment = try Self.environment(fixture, ["AUTO_ATTACH": "yes"])
        // Words with blanks, quotes, $ and a --help that belongs to QEMU: none is interpreted here.
        let cmd = ["-m", "512", "-name", "my vm; rm -rf /", "-fw_cfg", "name=opt/x,string=$HOME \"q\"", "--help"]
        let json = try fixture.container.exec([kvmLaunchBinary, "--dry-run", "--json"] + cmd, environment: environment).stdout
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let qemu = try #require(document["qemu"] as? [String])
        #expect(Array(qemu.suffix(cmd.count)) == cmd)
    }

    @Test func bashAsCommandShowsThePlanThenRunsAShellAndChangesNothing() throws {
        let fixture = try ContainerFixture([Self.twoInterfaces[0]])
        defer { fixture.destroy() }
        let before = try fixture.state()
        let result = try fixture.container.exec([kvmLaunchBinary, "bash", "-c", "echo shell-$((40+2))"],
                                                environment: try Self.environment(fixture, ["AUTO_ATTACH": "yes"]))
        #expect(result.stdout.contains("NIC 0: eth0"))
        #expect(result.stdout.contains("QEMU command line"))
        #expect(result.stdout.contains("shell-42"))
        #expect(try fixture.state() == before)
    }
}
