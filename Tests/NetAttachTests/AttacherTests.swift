import InMemoryNetlink
import LaunchConfiguration
import Logging
import Netlink
import NetworkTypes
import PropertyBased
import SystemPackage
import Testing
@testable import NetAttach

/// A container shape, built through the in-memory namespace's own operations so that the routes the
/// kernel makes by itself (connected routes) are there as they would be.
struct ContainerShape: Sendable, CustomStringConvertible {
    var description: String
    var environment: [String: String]
    var build: @Sendable (InMemoryNamespace) throws -> Void

    func namespace() throws -> InMemoryNamespace {
        let namespace = InMemoryNamespace(links: [LinkRecord(index: 1, name: "lo", kind: .loopback, mac: nil, mtu: 65536, hardwareType: .loopback)])
        try build(namespace)
        return namespace
    }

    static func veth(_ index: Int32, _ name: String, _ mac: String, mtu: Int = 1500) -> LinkRecord {
        LinkRecord(index: index, name: name, kind: .veth, mac: MACAddress(mac)!, mtu: mtu)
    }

    static func address(_ index: Int32, _ text: String) -> AddressRecord { .on(index, text) }

    static func route(_ index: Int32, _ destination: String, via gateway: String? = nil, metric: UInt32 = 0) -> RouteRecord {
        .on(index, destination, via: gateway, metric: metric)
    }

    /// eth0 with two addresses, a default route and a service route; eth1 with one address and no gateway.
    static let twoInterfaces = ContainerShape(description: "two interfaces", environment: ["AUTO_ATTACH": "yes", "SELECTED_NETWORK": "10.42.0.0/16"]) { ns in
        ns.state.links += [veth(5, "eth0", "02:42:0a:2a:00:07", mtu: 1450), veth(8, "eth1", "02:42:c0:a8:05:02")]
        try ns.addAddress(address(5, "10.42.0.7/16"))
        try ns.addAddress(address(5, "172.20.0.7/24"))
        try ns.addRoute(route(5, "0.0.0.0/0", via: "10.42.0.1"))
        try ns.addRoute(route(5, "10.96.0.0/12", via: "10.42.0.1", metric: 10))
        try ns.addAddress(address(8, "192.168.5.2/24"))
    }

    /// Calico's shape: a /32, a link-scope host route to 169.254.1.1 and the default route through it.
    static let calico = ContainerShape(description: "calico /32", environment: ["AUTO_ATTACH": "yes"]) { ns in
        ns.state.links.append(veth(3, "eth0", "ee:ee:ee:ee:ee:ee"))
        try ns.addAddress(address(3, "10.244.1.9/32"))
        try ns.addRoute(route(3, "169.254.1.1/32"))
        try ns.addRoute(route(3, "0.0.0.0/0", via: "169.254.1.1"))
    }

    /// An interface without an address (the VM gets the link, no DHCP answer), next to an old alias.
    static let bare = ContainerShape(description: "no address, old alias", environment: ["AUTO_ATTACH": "yes"]) { ns in
        var link = veth(4, "eth0", "02:00:00:00:00:04")
        link.alias = "uplink 7"
        ns.state.links.append(link)
    }

    /// Two addresses in one subnet: the second is the kernel's secondary of the first.
    static let secondary = ContainerShape(description: "secondary address", environment: ["AUTO_ATTACH": "yes"]) { ns in
        ns.state.links.append(veth(6, "eth0", "02:42:0a:2b:00:07"))
        try ns.addAddress(address(6, "10.43.0.7/16"))
        try ns.addAddress(address(6, "10.43.0.8/16"))
        try ns.addRoute(route(6, "0.0.0.0/0", via: "10.43.0.1"))
    }

    static func address6(_ index: Int32, _ text: String, scope: RouteScope = .universe, flags: UInt32 = 0) -> AddressRecord {
        .on(index, text, scope: scope, flags: flags)
    }

    /// The link-local address the kernel gives a link with `mac`.
    static func linkLocal(_ index: Int32, _ mac: String) -> AddressRecord {
        address6(index, "\(IPv6Address.linkLocal(eui64: MACAddress(mac)!))/64", scope: .link)
    }

    static func route6(_ index: Int32, _ destination: String, via gateway: String? = nil) -> RouteRecord { .on(index, destination, via: gateway) }

    /// Dual stack as Calico gives it: IPv4 and one global IPv6 address, the IPv6 default route through a link-local gateway.
    static let dualStack = ContainerShape(description: "dual stack", environment: ["AUTO_ATTACH": "yes"]) { ns in
        ns.state.links.append(veth(7, "eth0", "02:42:0a:2c:00:07"))
        try ns.addAddress(address(7, "10.44.0.7/16"))
        try ns.addRoute(route(7, "0.0.0.0/0", via: "10.44.0.1"))
        try ns.addAddress(linkLocal(7, "02:42:0a:2c:00:07"))
        try ns.addAddress(address6(7, "fd00:44::7/64"))
        try ns.addRoute(route6(7, "::/0", via: "fe80::ecee:eeff:feee:eeee"))
    }

    /// IPv6 only, as Docker gives it: two global addresses (`nodad`, as Docker adds them), the default route through a global gateway on the link.
    static let ipv6Only = ContainerShape(description: "IPv6 only", environment: ["AUTO_ATTACH": "yes"]) { ns in
        ns.state.links.append(veth(9, "eth0", "02:42:ac:11:00:09"))
        try ns.addAddress(linkLocal(9, "02:42:ac:11:00:09"))
        try ns.addAddress(address6(9, "2001:db8:45::9/64", flags: 0x02))
        try ns.addAddress(address6(9, "fd00:45::9/64", flags: 0x02))
        try ns.addRoute(route6(9, "::/0", via: "fd00:45::1"))
    }

    static let all = [twoInterfaces, calico, bare, secondary, dualStack, ipv6Only]
}

let quietLogger: Logger = {
    var logger = Logger(label: "kvm-launch-test")
    logger.logLevel = .critical
    return logger
}()

/// The plan a launcher makes from what it reads (after computing recovery), with a fixed generator.
func makeAttachPlan(for namespace: InMemoryNamespace, shape: ContainerShape, mode: LaunchConfiguration.NetworkMode) throws -> AttachPlan {
    let inventory = try Inventory.read(from: namespace)
    return try makeAttachPlan(for: RecoveryPlan(inventory).applied(to: inventory), shape: shape, mode: mode)
}

func makeAttachPlan(for inventory: Inventory, shape: ContainerShape, mode: LaunchConfiguration.NetworkMode) throws -> AttachPlan {
    var environment = shape.environment
    environment["USE_NET_BRIDGES"] = mode == .bridge ? "yes" : "no"
    let configuration = try LaunchConfiguration(environment: environment)
    let planner = AttachPlanner(configuration: configuration, resolver: ResolverConfiguration(parsing: "nameserver 10.43.0.10\n"), hostname: "pod-0")
    let selected = InterfaceSelection.selected(try InterfaceSelection.decide(inventory, selection: configuration.selection))
    var generator = SeededGenerator(state: 42)
    return try planner.plan(selected: selected, inventory: inventory, using: &generator)
}

func attacher(_ namespace: InMemoryNamespace, afterStep: ((Int) -> Void)? = nil) -> Attacher {
    Attacher(netlink: namespace, devices: namespace, nodeDirectory: "/run/kvm-launch/vm-0123456789abcdef", logger: quietLogger, afterStep: afterStep)
}

/// Nothing of the attach is left: the same links, addresses and routes, no open descriptor, no node.
func expectPristine(_ namespace: InMemoryNamespace, like start: InMemoryNamespace, _ comment: Comment, sourceLocation: SourceLocation = #_sourceLocation) {
    let now = namespace.network, before = start.network
    #expect(now.links == before.links, "links: \(comment)", sourceLocation: sourceLocation)
    #expect(now.addresses == before.addresses, "addresses: \(comment)", sourceLocation: sourceLocation)
    #expect(now.routes == before.routes, "routes: \(comment)", sourceLocation: sourceLocation)
    #expect(namespace.state.descriptors.isEmpty, "open descriptors: \(comment)", sourceLocation: sourceLocation)
    #expect(namespace.state.nodes.isEmpty, "device nodes: \(comment)", sourceLocation: sourceLocation)
}

let modes: [LaunchConfiguration.NetworkMode] = [.macvtap, .bridge]

@Suite struct AttacherTests {
    @Test(arguments: ContainerShape.all, modes)
    func attachThenTeardownRestoresTheStartExactly(_ shape: ContainerShape, _ mode: LaunchConfiguration.NetworkMode) throws {
        let namespace = try shape.namespace()
        let start = namespace.copy()
        let plan = try makeAttachPlan(for: namespace, shape: shape, mode: mode)
        let attacher = attacher(namespace)
        let attachments = try attacher.apply(plan)
        #expect(attachments.count == plan.interfaces.count)
        for interface in plan.interfaces {
            let link = try #require(namespace.state.links.first { $0.index == interface.index })
            #expect(link.mac == interface.containerMAC)
            let vm = try #require(namespace.state.links.first { $0.name == interface.vmLinkName })
            #expect(vm.alias == LinkMarker.createdAlias)
            #expect(vm.isUp)
            if mode == .macvtap {
                #expect(vm.mac == interface.guestMAC, "the macvtap carries the original MAC")
            } else {
                #expect(vm.masterIndex == namespace.state.links.first { $0.name == interface.bridgeName }?.index)
                #expect(link.masterIndex == vm.masterIndex)
            }
            if let guest = interface.guestAddress {
                #expect(!namespace.state.addresses.contains { $0.interfaceIndex == interface.index && $0.ipv4 == guest })
            }
            #expect(RecordedIdentity(alias: link.alias) == interface.identity)
        }
        #expect(namespace.state.descriptors.count == plan.interfaces.count)
        #expect(attacher.teardown().isEmpty)
        expectPristine(namespace, like: start, "after teardown")
        #expect(try makeAttachPlan(for: namespace, shape: shape, mode: mode) == plan, "a second launch plans the same")
    }

    /// Every call the attach makes (reads included) fails once, in its own run: the namespace is as it was.
    @Test(arguments: ContainerShape.all, modes)
    func aFailureAtAnyCallLeavesTheStart(_ shape: ContainerShape, _ mode: LaunchConfiguration.NetworkMode) throws {
        let reference = try shape.namespace()
        let plan = try makeAttachPlan(for: reference, shape: shape, mode: mode)
        let before = reference.calls.count
        _ = try attacher(reference).apply(plan)
        let callCount = reference.calls.count - before
        #expect(callCount >= Attacher.steps(for: plan).count)

        for failing in 1...callCount where reference.calls[before + failing - 1] != .openVhostNet {
            // (Opening /dev/vhost-net is optional: when it does not open, the NIC runs without it.)
            let namespace = try shape.namespace()
            let start = namespace.copy()
            let offset = namespace.calls.count
            namespace.failure = { number, call in number == offset + failing && call != .openVhostNet ? .ioError : nil }
            do {
                _ = try attacher(namespace).apply(plan)
                Issue.record("call \(failing) (\(namespace.calls[offset + failing - 1])) failed but the attach succeeded")
            } catch {
                #expect(error.rollbackProblems.isEmpty, "call \(failing): \(error)")
                let injected: Bool = switch error.cause {
                case .netlink(let cause): cause.errno == .ioError
                case .device(let cause): cause.errno == .ioError
                case .vanished: false
                }
                #expect(injected, "the failure is the injected one: \(error)")
            }
            expectPristine(namespace, like: start, "failure at call \(failing): \(namespace.calls[offset + failing - 1])")
        }
    }

    /// The launcher dies (SIGKILL) right after step N: the state it left is recovered, and the plan
    /// made from the recovered namespace — and the one `--dry-run` shows before recovery — is the
    /// plan of a clean run.
    @Test(arguments: ContainerShape.all, modes)
    func deathAfterAnyStepThenRecoveryConverges(_ shape: ContainerShape, _ mode: LaunchConfiguration.NetworkMode) throws {
        let clean = try shape.namespace()
        let cleanPlan = try makeAttachPlan(for: clean, shape: shape, mode: mode)
        let stepCount = Attacher.steps(for: cleanPlan).count
        for death in 1...stepCount {
            let namespace = try shape.namespace()
            var abandoned: InMemoryNamespace?
            _ = try attacher(namespace) { step in if step == death { abandoned = namespace.copy() } }.apply(cleanPlan)
            let left = try #require(abandoned, "step \(death) was reached")
            left.processDied()

            let inventory = try Inventory.read(from: left)
            let recovery = RecoveryPlan(inventory)
            #expect(!recovery.isEmpty, "step \(death) left something to recover")
            #expect(try makeAttachPlan(for: recovery.applied(to: inventory), shape: shape, mode: mode) == cleanPlan, "dry-run after death at step \(death)")
            let restored = try attacher(left).recover(recovery)
            #expect(restored == cleanPlan.interfaces.filter { RecordedIdentity.isRecorded(inventory.link(index: $0.index)?.alias) }.map(\.name))
            expectPristine(left, like: clean, "recovered after death at step \(death)")
            #expect(try makeAttachPlan(for: left, shape: shape, mode: mode) == cleanPlan, "plan after recovery from death at step \(death)")
            #expect(RecoveryPlan(try Inventory.read(from: left)).isEmpty, "nothing left to recover after step \(death)")
        }
    }

    /// The two-interface container as it starts, and attached in `mode`.
    private func attachedTwoInterfaces(_ mode: LaunchConfiguration.NetworkMode) throws -> (InMemoryNamespace, start: InMemoryNamespace, Attacher) {
        let namespace = try ContainerShape.twoInterfaces.namespace()
        let start = namespace.copy()
        let attacher = attacher(namespace)
        _ = try attacher.apply(try makeAttachPlan(for: namespace, shape: .twoInterfaces, mode: mode))
        return (namespace, start, attacher)
    }

    /// Issue 15 item 3: the teardown deletes kvm-launch's links with one request for their link group,
    /// and closes every descriptor in one batch.
    @Test(arguments: modes)
    func teardownDeletesTheLinkGroupInOneRequest(_ mode: LaunchConfiguration.NetworkMode) throws {
        let (namespace, start, attacher) = try attachedTwoInterfaces(mode)
        let created = namespace.state.links.filter { $0.alias == LinkMarker.createdAlias }
        #expect(created.count == 4)
        #expect(created.allSatisfy { $0.group == LinkMarker.linkGroup }, "every link kvm-launch made is in its group")
        #expect(namespace.state.links.filter { $0.alias != LinkMarker.createdAlias }.allSatisfy { $0.group == 0 }, "no other link is")
        let before = namespace.calls.count
        #expect(attacher.teardown().isEmpty)
        let calls = namespace.calls.dropFirst(before)
        #expect(calls.filter { if case .deleteLinkGroup(LinkMarker.linkGroup) = $0 { true } else { false } }.count == 1)
        // kvm-launch's links and descriptors go before anything of the container's is put back: the
        // macvtap queues' closes start first (their grace periods overlap the deletion's), a TAP's after.
        let group = try #require(calls.firstIndex(of: .deleteLinkGroup(LinkMarker.linkGroup)))
        let release = Array(calls[calls.startIndex..<group])
        let descriptors = 2  // one queue per interface
        let closes = calls.filter { if case .close = $0 { true } else { false } }.count
        #expect(closes == descriptors)
        switch mode {
        case .macvtap:
            #expect(release.count == descriptors && release.allSatisfy { if case .close = $0 { true } else { false } },
                    "the macvtap queues close before the group deletion, nothing else: \(release)")
        case .bridge:
            #expect(release.isEmpty, "a TAP closes after the group deletion (closing it would delete it on its own): \(release)")
            #expect(calls[calls.index(after: group)...].prefix(descriptors).allSatisfy { if case .close = $0 { true } else { false } })
        }
        #expect(!calls.contains { if case .deleteLink = $0 { true } else { false } }, "no link is deleted on its own")
        expectPristine(namespace, like: start, "after a group teardown")
    }

    /// Issue 15: the launcher releases kvm-launch's own links and descriptors while its responders close
    /// their sockets, and restores the container only after: the release touches nothing of the
    /// container's, the teardown after it restores everything exactly, and nothing is done twice.
    @Test(arguments: modes)
    func releasingOwnLinksFirstLeavesTheContainerForTheTeardown(_ mode: LaunchConfiguration.NetworkMode) throws {
        let (namespace, start, attacher) = try attachedTwoInterfaces(mode)
        let attached = namespace.copy()
        let before = namespace.calls.count
        #expect(attacher.releaseOwnLinks().isEmpty)
        let releaseCalls = namespace.calls.dropFirst(before)
        #expect(releaseCalls.filter { $0 == .deleteLinkGroup(LinkMarker.linkGroup) }.count == 1)
        #expect(releaseCalls.allSatisfy { if case .close = $0 { true } else { $0 == .deleteLinkGroup(LinkMarker.linkGroup) } },
                "the release deletes the group and closes descriptors, nothing else: \(Array(releaseCalls))")
        #expect(!namespace.state.links.contains { $0.alias == LinkMarker.createdAlias }, "kvm-launch's links are gone")
        #expect(namespace.state.descriptors.isEmpty && namespace.state.nodes.isEmpty, "its descriptors and nodes too")
        // The container's own interfaces still carry what the attach gave them.
        let containerLinks = { (ns: InMemoryNamespace) in ns.state.links.filter { $0.alias != LinkMarker.createdAlias }.map(\.mac) }
        #expect(containerLinks(namespace) == containerLinks(attached))
        #expect(namespace.network.addresses.filter { a in namespace.state.links.contains { $0.index == a.interfaceIndex } }
                == attached.network.addresses.filter { a in namespace.state.links.contains { $0.index == a.interfaceIndex } })
        #expect(attacher.releaseOwnLinks().isEmpty, "a second release does nothing")
        let released = namespace.calls.count
        #expect(attacher.teardown().isEmpty)
        #expect(!namespace.calls.dropFirst(released).contains { if case .deleteLinkGroup = $0 { true } else { false } }, "the group goes once")
        expectPristine(namespace, like: start, "after a release and a teardown")
    }

    @Test func stepCountsPerMode() throws {
        let namespace = try ContainerShape.calico.namespace()
        let macvtap = try makeAttachPlan(for: namespace, shape: .calico, mode: .macvtap)
        let bridge = try makeAttachPlan(for: namespace, shape: .calico, mode: .bridge)
        #expect(Attacher.steps(for: macvtap).count == 8)
        #expect(Attacher.steps(for: bridge).count == 8)
        var counted = 0
        _ = try attacher(namespace) { counted = $0 }.apply(macvtap)
        #expect(counted == 8, "the attacher calls back once per listed step")
        let json = PlanReport.json(macvtap)
        #expect(json.contains("\"attachStepCount\" : 8"))
    }
}

/// Calico's shape (issue 10 item 2): routes are restored in dependency order, and a failing route
/// does not stop the others.
@Suite struct RouteRestoreTests {
    @Test func kernelModelRefusesTheDefaultRouteBeforeItsGatewayIsOnLink() throws {
        let namespace = try ContainerShape.calico.namespace()
        try namespace.deleteAddress(ContainerShape.address(3, "10.244.1.9/32"))
        #expect(namespace.state.routes.isEmpty, "removing the last address took the routes along")
        try namespace.addAddress(ContainerShape.address(3, "10.244.1.9/32"))
        #expect(throws: NetlinkError.self) { try namespace.addRoute(ContainerShape.route(3, "0.0.0.0/0", via: "169.254.1.1")) }
        let ordered = RouteOrder.dependencyOrdered([ContainerShape.route(3, "0.0.0.0/0", via: "169.254.1.1"), ContainerShape.route(3, "169.254.1.1/32")])
        for route in ordered { try namespace.addRoute(route) }
        #expect(namespace.state.routes.count == 2)
    }

    @Test(arguments: modes)
    func calicoRoutesComeBackAfterTeardown(_ mode: LaunchConfiguration.NetworkMode) throws {
        let namespace = try ContainerShape.calico.namespace()
        let start = namespace.copy()
        let plan = try makeAttachPlan(for: namespace, shape: .calico, mode: mode)
        #expect(plan.interfaces[0].routes.first?.destination.prefixLength == 0, "the recorded order puts the default route first")
        let attacher = attacher(namespace)
        _ = try attacher.apply(plan)
        #expect(!namespace.state.routes.contains { $0.interfaceIndex == 3 }, "moving the /32 off took both routes")
        #expect(attacher.teardown().isEmpty)
        expectPristine(namespace, like: start, "calico after teardown")
    }

    @Test func oneFailingRouteDoesNotStopTheOthersAndIsReported() throws {
        let namespace = try ContainerShape.calico.namespace()
        let start = namespace.copy()
        let plan = try makeAttachPlan(for: namespace, shape: .calico, mode: .macvtap)
        let attacher = attacher(namespace)
        _ = try attacher.apply(plan)
        // The host route to the gateway fails; the default route after it is still tried (and the
        // kernel refuses it, its gateway being unreachable now), and the MAC and alias still come back.
        namespace.failure = { _, call in
            if case .addRoute(let route) = call, route.destination == ip("169.254.1.1") { return .noBufferSpace }
            return nil
        }
        let problems = attacher.teardown()
        #expect(problems.map(\.what) == ["restore route 169.254.1.1/32 dev #3 scope link", "restore route default via 169.254.1.1 dev #3"])
        let errnos = problems.map { problem -> Errno? in if case .netlink(let error) = problem.cause { return error.errno } else { return nil } }
        #expect(errnos == [.noBufferSpace, .networkUnreachable])
        var expected = start.network
        expected.routes.removeAll()
        #expect(namespace.network == expected, "everything but the two routes is back")
    }

    @Test func recoveryKeepsGoingAndReportsEveryProblem() throws {
        let namespace = try ContainerShape.calico.namespace()
        let plan = try makeAttachPlan(for: namespace, shape: .calico, mode: .macvtap)
        var abandoned: InMemoryNamespace?
        _ = try attacher(namespace) { if $0 == 3 { abandoned = namespace.copy() } }.apply(plan)
        let left = try #require(abandoned)
        let recovery = RecoveryPlan(try Inventory.read(from: left))
        let routeSteps = recovery.steps.filter { if case .addRoute = $0 { true } else { false } }
        #expect(routeSteps.map(\.description) == ["put route 169.254.1.1/32 dev #3 scope link back on eth0", "put route default via 169.254.1.1 dev #3 back on eth0"])
        left.failure = { _, call in if case .addAddress = call { .noBufferSpace } else { nil } }
        #expect(throws: RecoveryError.self) { try attacher(left).recover(recovery) }
        do {
            try attacher(left).recover(recovery)
        } catch {
            // The address failed, so both routes (which need it up... they only need the link) are tried anyway.
            #expect(error.problems.count >= 1)
            #expect(error.problems.first?.what.contains("10.244.1.9/32") == true)
        }
        #expect(left.state.links.first { $0.index == 3 }?.alias == nil, "the alias step after the failures still ran")
    }
}

/// Issue 10 item 3: only kvm-launch's exact marker counts.
@Suite struct LinkMarkerTests {
    @Test func aForeignAliasThatStartsLikeOursIsNeverTouched() throws {
        let foreign = LinkRecord(index: 6, name: "ops0", kind: .veth, mac: MACAddress("02:00:00:00:00:06"), alias: "kvm-launch:created-by-ops")
        let ours = LinkRecord(index: 7, name: "klsrv5", kind: .macvlan, mac: MACAddress("02:00:00:00:00:07"), lowerIndex: 5, alias: LinkMarker.createdAlias)
        let namespace = InMemoryNamespace(links: [ContainerShape.veth(5, "eth0", "02:00:00:00:00:05"), foreign, ours])
        let inventory = try Inventory.read(from: namespace)
        #expect(!LinkMarker.isCreated(foreign, in: inventory))
        #expect(LinkMarker.isCreated(ours, in: inventory))
        let recovery = RecoveryPlan(inventory)
        #expect(recovery.steps == [.deleteLink(index: 7, name: "klsrv5")])
        try attacher(namespace).recover(recovery)
        #expect(namespace.state.links.map(\.name) == ["eth0", "ops0"])
        let decisions = try InterfaceSelection.decide(try Inventory.read(from: namespace), selection: .automatic)
        #expect(decisions.first { $0.link.name == "ops0" }?.attach == true, "a foreign veth is attachable like any other")
    }

    @Test func namesAreBuiltAndReadInOnePlace() {
        #expect(LinkMarker.tapName(for: 7) == "kltap7")
        #expect(LinkMarker.ownerIndex(ofName: LinkMarker.containerSideName(for: 12)) == 12)
        #expect(LinkMarker.ownerIndex(ofName: LinkMarker.bridgeName(for: 3)) == 3)
        #expect(LinkMarker.ownerIndex(ofName: "kltap") == nil)
        #expect(LinkMarker.ownerIndex(ofName: "kltap٣") == nil, "only ASCII digits")
    }
}

/// Random failure points and deaths over random shapes and modes.
@Suite struct AttacherPropertyTests {
    static let scenario = zip(Gen.int(in: 0..<ContainerShape.all.count), Gen.bool, Gen.int(in: 1...80), Gen.int(in: 0...2))

    @Test func randomFailureOrDeathAlwaysEndsAtTheStart() async {
        await propertyCheck(count: 300, input: Self.scenario) { input in
            let (shapeIndex, bridge, point, kind) = input
            let shape = ContainerShape.all[shapeIndex]
            let mode: LaunchConfiguration.NetworkMode = bridge ? .bridge : .macvtap
            do {
                let namespace = try shape.namespace()
                let start = namespace.copy()
                let plan = try makeAttachPlan(for: namespace, shape: shape, mode: mode)
                let steps = Attacher.steps(for: plan).count
                switch kind {
                case 0:
                    // A failure at one call of the attach (or none when the attach makes fewer calls).
                    let offset = namespace.calls.count
                    namespace.failure = { number, _ in number == offset + point ? .ioError : nil }
                    let attacher = attacher(namespace)
                    let attached = try? attacher.apply(plan)
                    namespace.failure = nil
                    if attached != nil { #expect(attacher.teardown().isEmpty) }
                    expectPristine(namespace, like: start, "\(shape), \(mode), failure at call \(point)")
                case 1:
                    // Death after a step, then recovery.
                    let death = 1 + point % steps
                    var abandoned: InMemoryNamespace?
                    _ = try attacher(namespace) { if $0 == death { abandoned = namespace.copy() } }.apply(plan)
                    let left = try #require(abandoned)
                    left.processDied()
                    try attacher(left).recover(try Inventory.read(from: left))
                    expectPristine(left, like: start, "\(shape), \(mode), death after step \(death)")
                    #expect(try makeAttachPlan(for: left, shape: shape, mode: mode) == plan)
                default:
                    // A failure part-way, and then a death during the rollback: recovery still converges.
                    let offset = namespace.calls.count
                    let failAt = offset + 1 + point % (steps + 4)
                    var abandoned: InMemoryNamespace?
                    namespace.failure = { number, _ in
                        if number == failAt { return .ioError }
                        if number == failAt + 1 { abandoned = namespace.copy() }
                        return nil
                    }
                    let partial = attacher(namespace)
                    let attached = try? partial.apply(plan)
                    namespace.failure = nil
                    if attached != nil { #expect(partial.teardown().isEmpty) }
                    expectPristine(namespace, like: start, "\(shape), \(mode), failure at call \(failAt - offset)")
                    if let left = abandoned {
                        left.processDied()
                        try attacher(left).recover(try Inventory.read(from: left))
                        expectPristine(left, like: start, "\(shape), \(mode), death during the rollback")
                    }
                }
            } catch {
                Issue.record("\(shape), \(mode): \(error)")
            }
        }
    }
}

/// `VM_NET_QUEUES`: the macvtap or tap is opened once per queue; the journal closes every queue.
@Suite struct MultiqueueAttachTests {
    func queued(_ plan: AttachPlan, _ queues: Int) -> AttachPlan {
        var plan = plan
        for index in plan.interfaces.indices { plan.interfaces[index].queues = queues }
        return plan
    }

    @Test(arguments: modes)
    func everyQueueHasItsDescriptorAndTeardownClosesThemAll(_ mode: LaunchConfiguration.NetworkMode) throws {
        let shape = ContainerShape.all[0]
        let namespace = try shape.namespace()
        let start = namespace.copy()
        let plan = queued(try makeAttachPlan(for: namespace, shape: shape, mode: mode), 3)
        let attacher = attacher(namespace)
        let attachments = try attacher.apply(plan)
        for attachment in attachments {
            #expect(attachment.descriptors.count == 3)
            #expect(Set(attachment.descriptors).count == 3, "three distinct descriptors")
            #expect(attachment.descriptor == attachment.descriptors[0])
        }
        #expect(namespace.state.descriptors.count == 3 * plan.interfaces.count)
        #expect(attacher.teardown().isEmpty)
        expectPristine(namespace, like: start, "after teardown")
    }

    @Test(arguments: modes)
    func aFailureAtAnyCallWithQueuesLeavesTheStart(_ mode: LaunchConfiguration.NetworkMode) throws {
        let shape = ContainerShape.all[0]
        let reference = try shape.namespace()
        let plan = queued(try makeAttachPlan(for: reference, shape: shape, mode: mode), 2)
        let before = reference.calls.count
        _ = try attacher(reference).apply(plan)
        let callCount = reference.calls.count - before
        for failing in 1...callCount where reference.calls[before + failing - 1] != .openVhostNet {
            let namespace = try shape.namespace()
            let start = namespace.copy()
            let offset = namespace.calls.count
            namespace.failure = { number, call in number == offset + failing && call != .openVhostNet ? .ioError : nil }
            #expect(throws: AttachError.self, "call \(failing)") { _ = try attacher(namespace).apply(plan) }
            expectPristine(namespace, like: start, "failure at call \(failing): \(namespace.calls[offset + failing - 1])")
        }
    }
}
