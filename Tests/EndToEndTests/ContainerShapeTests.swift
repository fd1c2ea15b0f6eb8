import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The network shapes real runtimes give a container, each taken over and given back exactly:
/// Calico's `/32` with a link-scope route to an off-subnet gateway, IPv6 addresses and routes, an
/// interface without addresses, and interfaces created out of order. kvm-launch runs as PID 1 of a
/// new PID namespace with a fresh /run, as in a container.
@Suite(.serialized, .enabled(if: isRoot, "needs root: makes network and PID namespaces and links, and runs QEMU"))
struct ContainerShapeTests {
    typealias VMRun = EndToEndTests.VMRun

    static let calico = [ContainerFixture.Interface.calico(address: "10.88.0.2")]
    /// An address of the node beyond the pod's gateway: reachable from the VM only by its default route.
    static let beyondGateway = "192.0.2.77"

    /// `kvm-launch --dry-run --json` in the container, decoded.
    static func dryRun(_ fixture: ContainerFixture, _ environment: [String: String]) throws -> [String: Any] {
        var env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "VM_ACCEL": "tcg", "VM_IMAGE": try RestartTests.blankImage(in: fixture),
                   "KVM_LAUNCH_RUN_DIR": fixture.directory.appendingPathComponent("run").path]
        env.merge(environment) { _, new in new }
        let result = try fixture.container.exec([kvmLaunchBinary, "--dry-run", "--json"], environment: env)
        let document = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
        return try #require(document as? [String: Any], "--dry-run --json prints an object: \(result.stdout)")
    }

    /// The planned interfaces of ``dryRun(_:_:)``.
    static func plannedInterfaces(_ fixture: ContainerFixture, _ environment: [String: String]) throws -> [[String: Any]] {
        let document = try dryRun(fixture, environment)
        return try #require(document["interfaces"] as? [[String: Any]], "--dry-run --json has an interfaces array: \(document)")
    }

    /// Attach everything, let "QEMU" (`/bin/true`) end at once, restore: the namespace is as before.
    func expectAttachAndStopRestoresExactly(_ fixture: ContainerFixture, _ environment: [String: String],
                                            sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try fixture.state()
        let run = try RestartTests.recoverAttachAndStop(fixture, environment, "attach and stop", sourceLocation: sourceLocation)
        #expect(!RestartTests.attachSteps(in: run.stderrLines).isEmpty, "the attach really ran", sourceLocation: sourceLocation)
        let after = try fixture.state()
        #expect(after == before, "attach and stop give the namespace back exactly: \(RestartTests.difference(before, after))",
                sourceLocation: sourceLocation)
    }

    @Test func calicoShapeAttachAndStopRestoresBothRoutes() throws {
        let fixture = try ContainerFixture(Self.calico)
        defer { fixture.destroy() }
        let routes = try fixture.container.exec(["ip", "-4", "route", "show"]).stdout
        try #require(routes.contains("default via 169.254.1.1 dev eth0") && routes.contains("169.254.1.1 dev eth0 scope link"),
                     "the fixture has Calico's routes: \(routes)")
        let plan = try Self.plannedInterfaces(fixture, ["AUTO_ATTACH": "yes"])
        #expect(plan.first?["guestAddress"] as? String == "10.88.0.2/32")
        for mode in ["no", "yes"] {
            try expectAttachAndStopRestoresExactly(fixture, ["AUTO_ATTACH": "yes", "USE_NET_BRIDGES": mode])
        }
    }

    @Test func ipv6AddressesAndRoutesAreLeftAndGivenBackExactly() throws {
        let fixture = try ContainerFixture([
            .init(name: "eth0", addresses: ["10.88.0.2/24", "fd00:88::2/64"], peerAddress: "10.88.0.1/24", defaultRoute: true,
                  routes: ["fd00:99::/64 via fd00:88::1", "default via fd00:88::1"], peerAddresses: ["fd00:88::1/64"]),
        ])
        defer { fixture.destroy() }
        let routes = try fixture.container.exec(["ip", "-6", "route", "show"]).stdout
        try #require(routes.contains("fd00:99::/64 via fd00:88::1 dev eth0") && routes.contains("default via fd00:88::1 dev eth0"),
                     "the fixture has the IPv6 routes: \(routes)")
        try expectAttachAndStopRestoresExactly(fixture, ["AUTO_ATTACH": "yes"])
    }

    @Test func interfaceWithoutAddressesIsAttachedAndGivenBack() throws {
        let fixture = try ContainerFixture([
            .init(name: "eth0", addresses: ["10.88.0.2/24"], peerAddress: "10.88.0.1/24", defaultRoute: true),
            .init(name: "eth1", addresses: []),
        ])
        defer { fixture.destroy() }
        let addresses = try fixture.container.exec(["ip", "-4", "-o", "addr", "show", "dev", "eth1"]).stdout
        try #require(addresses.isEmpty, "eth1 has no IPv4 address: \(addresses)")
        let plan = try Self.plannedInterfaces(fixture, ["AUTO_ATTACH": "yes"])
        #expect(plan.compactMap { $0["name"] as? String } == ["eth0", "eth1"])
        #expect(plan.last?["guestAddress"] == nil, "no address to hand over on eth1")
        #expect(plan.last?["guestMAC"] as? String == (try fixture.mac(of: "eth1")))
        try expectAttachAndStopRestoresExactly(fixture, ["AUTO_ATTACH": "yes"])
    }

    @Test func interfacesCreatedOutOfOrderAreNICsByNameOrByATTACH_IFACES() throws {
        let fixture = try ContainerFixture([
            .init(name: "eth0", addresses: ["10.88.0.2/24"], peerAddress: "10.88.0.1/24", defaultRoute: true),
            .init(name: "eth1", addresses: ["10.89.0.2/24"], peerAddress: "10.89.0.1/24"),
            .init(name: "eth2", addresses: ["10.90.0.2/24"], peerAddress: "10.90.0.1/24"),
        ], creationOrder: ["eth2", "eth0", "eth1"])
        defer { fixture.destroy() }
        let byName = try Self.plannedInterfaces(fixture, ["AUTO_ATTACH": "yes"])
        #expect(byName.compactMap { $0["name"] as? String } == ["eth0", "eth1", "eth2"], "AUTO_ATTACH=yes: NICs in natural name order, whatever the interface indexes")
        let named = try Self.plannedInterfaces(fixture, ["AUTO_ATTACH": "no", "ATTACH_IFACES": "eth2 eth0 eth1"])
        #expect(named.compactMap { $0["name"] as? String } == ["eth2", "eth0", "eth1"], "ATTACH_IFACES: NICs in the listed order")
        #expect(named.compactMap { $0["guestAddress"] as? String } == ["10.90.0.2/24", "10.88.0.2/24", "10.89.0.2/24"])
        try expectAttachAndStopRestoresExactly(fixture, ["AUTO_ATTACH": "yes"])
    }

    /// The real guest on a Calico pod's shape: it gets the `/32` and its route to the off-subnet
    /// gateway by DHCP, the node reaches it; a graceful stop and a SIGKILL of PID 1 followed by a
    /// restart both end with the pod's namespace exactly as it was.
    @Test func calicoGuestStopAndSigkillRestart() throws {
        try EndToEndTests.requireImage()
        var pod = ContainerFixture.Interface.calico(address: "10.88.0.2")
        pod.peerAddresses.append("\(Self.beyondGateway)/32")
        let fixture = try ContainerFixture([pod])
        defer { fixture.destroy() }
        let before = try fixture.state()
        let originalMAC = try fixture.mac(of: "eth0")
        let environment = ["AUTO_ATTACH": "yes"]

        let first = try VMRun(fixture, environment: environment, asContainer: true)
        defer { first.stop() }
        let pid1 = try first.process.containerPID1()
        let nics = try first.waitUntilReady()
        try #require(nics.count == 1)
        #expect(nics[0].mac == originalMAC)
        #expect(nics[0].address == "10.88.0.2/32")
        // The gateway is off-subnet: no router option; option 121 carries the host route to it.
        #expect(nics[0].gateway == "-")
        #expect(nics[0].routes?.split(separator: ";").contains("169.254.1.1/32-via-0.0.0.0") == true, "routes: \(nics[0].routes ?? "none")")
        // Its default route works: an address beyond the gateway (on the node) answers the VM.
        let mark = first.process.lines.count
        first.process.send("ping -c 2 -W 2 \(Self.beyondGateway) >/dev/null && echo CALICO-DEFAULT-ROUTE-OK\n")
        #expect(first.process.waitFor("CALICO-DEFAULT-ROUTE-OK", after: mark, timeout: 30) != nil,
                "the VM reaches \(Self.beyondGateway) through 169.254.1.1; console: \(first.process.lines.suffix(6))")
        #expect(fixture.pingFromPeer("10.88.0.2"), "the node reaches the VM on the pod's address")
        #expect(try fixture.peerNeighbourMAC("10.88.0.2") == originalMAC)
        #expect(kill(pid1, SIGKILL) == 0)
        let killed = first.process.waitForTermination(timeout: 30)
        #expect(killed == .signalled(SIGKILL), "PID 1 died by SIGKILL, not \(killed.map { "\($0)" } ?? "a hang")")

        let again = try VMRun(fixture, environment: environment, asContainer: true)
        defer { again.stop() }
        _ = try again.process.containerPID1()
        let restarted = try again.waitUntilReady()
        #expect(restarted.first?.mac == originalMAC)
        #expect(restarted.first?.address == "10.88.0.2/32")
        #expect(restarted.first?.routes?.split(separator: ";").contains("169.254.1.1/32-via-0.0.0.0") == true)
        #expect(fixture.pingFromPeer("10.88.0.2"))
        again.process.signal(SIGTERM)
        let stopped = again.process.waitForTermination(timeout: 60)
        #expect(stopped == .exited(0), "graceful stop: \(again.process.stderrLines.suffix(8))")
        let after = try fixture.state()
        #expect(after == before, "the pod's namespace is as before: \(RestartTests.difference(before, after))")
    }
}
