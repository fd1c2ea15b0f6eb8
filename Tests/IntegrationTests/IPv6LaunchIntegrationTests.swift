import Foundation
import Testing
import TestSupport

/// Issue 11 item 2 through the real binary in real namespaces: an IPv6-only container interface is
/// attached in bridge mode, its address moves off, the launcher's Router Advertisement + DHCPv6
/// responder serves it to a real ISC `dhclient -6`, the peer pings it, and SIGTERM puts the
/// container back exactly (addresses, link-local, routes). Two gateways: global on the link
/// (Docker's `default via fd00:…::1`: the launcher learns the gateway's kernel-made link-local
/// address on the link and advertises the default route from it) and link-local (Calico's). Either
/// way the VM's default route goes through the gateway's link-local address, and the VM reaches a
/// host in a network behind the gateway (which forwards).
///
/// The test guest's busybox has no `udhcpc6`, so the VM's side is a veth in a namespace of its
/// own, plugged into kvm-launch's bridge with the VM's MAC, and `LAUNCHER` is a script that waits
/// in place of QEMU.
@Suite(.serialized, .enabled(if: isRoot, needsRootReason))
struct IPv6LaunchIntegrationTests {
    @Test(arguments: ["global", "link-local"])
    func anIPv6OnlyInterfaceIsServedToARealDHCPv6ClientAndRestored(_ gateway: String) throws {
        let fixture = try ContainerFixture([ContainerFixture.Interface(name: "eth0", addresses: ["fd00:6b6f::7/64"], peerAddress: "fd00:6b6f::1/64",
                                                                        defaultRoute: gateway == "global")],
                                           resolvConf: "nameserver fd00:6b6f::53\nsearch v6.example.test\n")
        defer { fixture.destroy() }
        let line = try fixture.peer.exec(["ip", "-6", "-o", "addr", "show", "dev", "p0", "scope", "link"]).stdout
        let peerLinkLocal = String(try #require(line.split(separator: " ").dropFirst(3).first?.split(separator: "/").first))
        if gateway == "link-local" {
            try fixture.container.ip("-6 route add default via \(peerLinkLocal) dev eth0")
        }
        // A host in a network behind the gateway, which forwards: for the VM to reach.
        let far = try TestNamespace(prefix: "kl6w-far")
        defer { far.destroy() }
        try run(["ip", "-n", fixture.peer.name, "link", "add", "kl6wf", "type", "veth", "peer", "name", "eth0", "netns", far.name])
        try fixture.peer.exec(["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"])
        try fixture.peer.ip("link set kl6wf up")
        try fixture.peer.ip("-6 addr add fd00:6b70::1/64 dev kl6wf nodad")
        try far.ip("link set eth0 up")
        try far.ip("-6 addr add fd00:6b70::2/64 dev eth0 nodad")
        try far.ip("-6 route add default via fd00:6b70::1 dev eth0")
        let vm = try TestNamespace(prefix: "kl6w-vm")
        defer { vm.destroy() }
        let before = try fixture.state()
        #expect(before.contains("inet6 fd00:6b6f::7/64"), "\(before)")
        let originalLinkLocal = try fixture.container.exec(["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"]).stdout
        #expect(!originalLinkLocal.isEmpty, "eth0 has its kernel link-local address")

        let launcher = fixture.directory.appendingPathComponent("wait-in-place-of-qemu").path
        try "#!/bin/sh\nexec sleep 120\n".write(toFile: launcher, atomically: true, encoding: .utf8)
        try run(["chmod", "755", launcher])
        var environment = try RecoveryIntegrationTests.environment(fixture, mode: "bridge")
        environment["LAUNCHER"] = launcher
        environment["VM_SHUTDOWN_TIMEOUT"] = "1"

        let plan = try RecoveryIntegrationTests.dryRun(fixture, environment)
        let interface = try #require((plan["interfaces"] as? [[String: Any]])?.first)
        let guestMAC = try #require(interface["guestMAC"] as? String)
        let bridge = try #require(interface["bridgeName"] as? String)
        let ipv6 = try #require(interface["ipv6"] as? [String: Any], "the dry-run shows the IPv6 plan: \(interface)")
        #expect(ipv6["movedAddresses"] as? [String] == ["fd00:6b6f::7/64"])
        let warned = (plan["warnings"] as? [String])?.contains { $0.contains("no IPv6 default route") } == true
        #expect(!warned, "the gateway's link-local address is known: \(plan["warnings"] ?? "")")
        #expect((ipv6["router"] as? String) == peerLinkLocal, "the RA's source: the gateway's own link-local address")

        let launch = try ConsoleProcess(["/usr/sbin/ip", "netns", "exec", fixture.container.name, kvmLaunchBinary], environment: environment)
        defer { launch.stop() }
        #expect(launch.waitForLine(onStderr: true, timeout: 30) { $0.contains("starting ") } != nil, "the launcher started its QEMU: \(launch.stderrLines)")

        // While the "VM" runs: the address is off eth0, whose link-local address is the new MAC's.
        let during = try fixture.container.exec(["ip", "-6", "-o", "addr", "show", "dev", "eth0"]).stdout
        #expect(!during.contains("fd00:6b6f::7"), "\(during)")
        #expect(!during.contains(originalLinkLocal.split(separator: " ")[3]), "the original link-local address is off eth0 while the VM runs: \(during)")

        // The VM's NIC: a veth on kvm-launch's bridge with the VM's MAC, its other end in the VM's namespace.
        try fixture.container.ip("link add kl6wv type veth peer name eth0 netns \(vm.name)")
        try vm.ip("link set eth0 address \(guestMAC)")
        try fixture.container.ip("link set kl6wv master \(bridge)")
        try fixture.container.ip("link set kl6wv up")
        try vm.ip("link set eth0 up")

        let work = fixture.directory.appendingPathComponent("vm").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let overlay = "\(work)/etc-overlay"
        let privateEtc = "mkdir -p \(overlay) && mount -t tmpfs tmpfs \(overlay) && mkdir \(overlay)/upper \(overlay)/work"
            + " && mount -t overlay overlay -o lowerdir=/etc,upperdir=\(overlay)/upper,workdir=\(overlay)/work /etc"
        let waitLinkLocal = "for i in $(seq 60); do ip -6 addr show dev eth0 scope link | grep -q tentative || break; sleep 0.1; done"
        let client = try vm.exec(["unshare", "--uts", "--mount", "--pid", "--fork", "--", "sh", "-c",
                                  "\(privateEtc) && \(waitLinkLocal) && timeout 30 dhclient -6 -1 -v -pf \(work)/pid -lf \(work)/leases -I -df \(work)/duid eth0"
                                  + " && cat /etc/resolv.conf"], check: false)
        #expect(client.status == 0, "dhclient -6: \(client.stdout) \(client.stderr)")
        #expect(client.stdout.contains("nameserver fd00:6b6f::53"), "the container's IPv6 name server reached the VM: \(client.stdout)")
        let vmAddresses = try vm.exec(["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"]).stdout
        #expect(vmAddresses.contains("fd00:6b6f::7"), "the VM has the container's address: \(vmAddresses)")

        // The Router Advertisement puts the prefix on-link in the VM (bounded wait: one RA at start,
        // the rest on the VM's Router Solicitations).
        var onLink = false
        for _ in 0..<100 where !onLink {
            onLink = (try? vm.exec(["ip", "-6", "route", "show", "fd00:6b6f::/64"]).stdout.contains("fd00:6b6f::/64")) == true
            if !onLink { usleep(100_000) }
        }
        #expect(onLink, "the VM learned the on-link prefix from the Router Advertisement")
        #expect(fixture.pingFromPeer("fd00:6b6f::7", attempts: 10), "the peer reaches the VM over IPv6")
        #expect(try fixture.peerNeighbourMAC("fd00:6b6f::7") == guestMAC, "the VM (not the container) answers for the address")
        var routed = false
        for _ in 0..<100 where !routed {
            routed = (try? vm.exec(["ip", "-6", "route", "show", "default"]).stdout.contains("via \(peerLinkLocal)")) == true
            if !routed { usleep(100_000) }
        }
        #expect(routed, "the VM's default route goes through the gateway's link-local address")
        let beyond = try vm.exec(["ping", "-6", "-c", "1", "-W", "3", "fd00:6b70::2"], check: false)
        #expect(beyond.status == 0, "the VM reaches a host behind the gateway: \(beyond.stdout)")
        if gateway == "global" {
            #expect(launch.stderrLines.contains { $0.contains("the IPv6 gateway fd00:6b6f::1 is \(peerLinkLocal)") }, "\(launch.stderrLines)")
        }

        try fixture.container.ip("link del kl6wv")
        launch.signal(SIGTERM)
        #expect(launch.waitForExit(timeout: 30) != nil, "the launcher exits on SIGTERM: \(launch.stderrLines)")
        #expect(launch.stderrLines.contains { $0.contains("interfaces are restored") }, "\(launch.stderrLines)")
        let after = try fixture.state()
        #expect(after == before, "the container's addresses, link-local address and routes are back: before\n\(before)\nafter\n\(after)\n\(launch.stderrLines)")
    }

    /// In macvtap mode the peer finds the VM's IPv6 addresses by Neighbor Solicitations to their
    /// solicited-node groups; a macvtap passes up only the groups on its own list, which QEMU never
    /// fills in, so kvm-launch makes the VM's macvtap take all multicast (the cloud-init end-to-end
    /// test pings a real guest's IPv6 address through it).
    @Test func theVMsMacvtapTakesAllMulticast() throws {
        let fixture = try ContainerFixture([ContainerFixture.Interface(name: "eth0", addresses: ["10.89.0.7/24", "fd00:6b74::7/64"],
                                                                        peerAddress: "10.89.0.1/24", defaultRoute: true)])
        defer { fixture.destroy() }
        let launcher = fixture.directory.appendingPathComponent("wait-in-place-of-qemu").path
        try "#!/bin/sh\nexec sleep 120\n".write(toFile: launcher, atomically: true, encoding: .utf8)
        try run(["chmod", "755", launcher])
        let environment = try RecoveryIntegrationTests.environment(fixture, mode: "macvtap", ["LAUNCHER": launcher, "VM_SHUTDOWN_TIMEOUT": "1"])
        let plan = try RecoveryIntegrationTests.dryRun(fixture, environment)
        let macvtap = try #require((plan["interfaces"] as? [[String: Any]])?.first?["vmLinkName"] as? String)
        let launch = try ConsoleProcess(["/usr/sbin/ip", "netns", "exec", fixture.container.name, kvmLaunchBinary], environment: environment)
        defer { launch.stop() }
        #expect(launch.waitForLine(onStderr: true, timeout: 30) { $0.contains("starting ") } != nil, "\(launch.stderrLines)")
        let flags = try fixture.container.exec(["ip", "-o", "link", "show", macvtap]).stdout
        #expect(flags.contains("ALLMULTI"), "the VM's macvtap takes every multicast group: \(flags)")
        let addresses = try fixture.container.exec(["ip", "-o", "-6", "address", "show", "dev", macvtap]).stdout
        #expect(addresses.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty,
                "the VM's macvtap has no IPv6 address of its own (it would be the guest's link-local address): \(addresses)")
        launch.signal(SIGTERM)
        #expect(launch.waitForExit(timeout: 30) != nil, "\(launch.stderrLines)")
    }

    /// SIGKILL right after each attach step of a dual-stack interface (its IPv4 address, two `nodad`
    /// IPv6 addresses, the link-local swap), then a new run: the dry-run in between plans as a clean
    /// run, the new run recovers from the alias, and its end leaves the container exactly as it was.
    @Test(arguments: ["macvtap", "bridge"])
    func dualStackSurvivesSIGKILLAfterEveryStep(_ mode: String) throws {
        let fixture = try ContainerFixture([ContainerFixture.Interface(name: "eth0", addresses: ["10.89.0.7/24", "fd00:6b71::7/64", "2001:db8:6b71::7/64"],
                                                                        peerAddress: "10.89.0.1/24", defaultRoute: true,
                                                                        peerAddresses: ["fd00:6b71::1/64"])])
        defer { fixture.destroy() }
        try fixture.container.ip("-6 route add default via fd00:6b71::1 dev eth0")
        let before = try fixture.state()
        let environment = try RecoveryIntegrationTests.environment(fixture, mode: mode)
        let clean = try RecoveryIntegrationTests.dryRun(fixture, environment)
        let steps = try #require(clean["attachStepCount"] as? Int)
        let cleanIPv6 = try #require((clean["interfaces"] as? [[String: Any]])?.first?["ipv6"] as? [String: Any])
        #expect(Set(cleanIPv6["movedAddresses"] as? [String] ?? []) == ["fd00:6b71::7/64", "2001:db8:6b71::7/64"])
        for step in 1...steps {
            let killed = try fixture.container.exec([kvmLaunchBinary], environment: environment.merging(["KVM_LAUNCH_TEST_KILL_AFTER_STEP": "\(step)"]) { _, new in new }, check: false)
            #expect(killed.status == 137 || killed.status == 9 || killed.status == -9, "killed at step \(step): \(killed.status) \(killed.stderr)")
            let preview = try RecoveryIntegrationTests.dryRun(fixture, environment)
            let ipv6 = (preview["interfaces"] as? [[String: Any]])?.first?["ipv6"] as? [String: Any]
            #expect(ipv6?["movedAddresses"] as? [String] == cleanIPv6["movedAddresses"] as? [String], "the dry-run after step \(step) plans as a clean run")
            let again = try fixture.container.exec([kvmLaunchBinary], environment: environment, check: false)
            #expect(again.stderr.contains("restored eth0"), "recovered after step \(step): \(again.stderr)")
            let after = try fixture.state()
            #expect(after == before, "restored exactly after a kill at step \(step): before\n\(before)\nafter\n\(after)\n\(again.stderr)")
        }
    }
}
