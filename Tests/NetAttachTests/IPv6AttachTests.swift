import InMemoryNetlink
import LaunchConfiguration
import Netlink
import NetworkTypes
import Testing
@testable import NetAttach

/// Issue 11 item 2 and issue 10 item 14 in the plan and the attach: the container's global IPv6
/// addresses move to the VM and come back; the container interface's link-local address is the one
/// of its new MAC while the VM runs. (The generic attach/failure/death tests in `AttacherTests` run
/// the `dualStack` and `ipv6Only` shapes too.)
@Suite struct IPv6AttachTests {
    @Test func thePlanCarriesTheIPv6LeaseAndTheLinkLocalSwap() throws {
        let namespace = try ContainerShape.dualStack.namespace()
        let plan = try makeAttachPlan(for: namespace, shape: .dualStack, mode: .macvtap)
        let interface = try #require(plan.interfaces.first)
        let ipv6 = try #require(interface.ipv6)
        #expect(ipv6.movedAddresses == [IPv6Interface("fd00:44::7/64")!])
        #expect(ipv6.router == IPv6Address("fe80::ecee:eeff:feee:eeee"), "a link-local gateway is the VM's router")
        #expect(ipv6.served)
        let lease = try #require(interface.ipv6Lease)
        #expect(lease.clientMAC == interface.guestMAC)
        #expect(lease.addresses == ipv6.movedAddresses)
        #expect(throws: Never.self) { try lease.validate() }

        let swap = try #require(interface.linkLocalSwap)
        #expect(swap.original.compactMap(\.ipv6) == [IPv6Interface(address: .linkLocal(eui64: interface.guestMAC), prefixLength: 64)])
        #expect(swap.replacement?.ipv6 == IPv6Interface(address: .linkLocal(eui64: interface.containerMAC), prefixLength: 64))

        let steps = Attacher.steps(for: interface)
        #expect(steps.contains(.moveIPv6AddressesOff([IPv6Interface("fd00:44::7/64")!], interface: "eth0")))
        #expect(steps.contains { if case .swapLinkLocal = $0 { true } else { false } })
        // The MAC changes before the link-local address made from it is added.
        let changeMAC = try #require(steps.firstIndex { if case .changeMAC = $0 { true } else { false } })
        let swapStep = try #require(steps.firstIndex { if case .swapLinkLocal = $0 { true } else { false } })
        #expect(changeMAC < swapStep)
    }

    @Test func aGlobalGatewayWithoutItsLinkLocalAddressGivesNoDefaultRouteAndSaysSo() throws {
        let namespace = try ContainerShape.ipv6Only.namespace()
        let plan = try makeAttachPlan(for: namespace, shape: .ipv6Only, mode: .macvtap)
        let ipv6 = try #require(plan.interfaces.first?.ipv6)
        #expect(ipv6.movedAddresses == [IPv6Interface("fd00:45::9/64")!, IPv6Interface("2001:db8:45::9/64")!], "in the kernel's order")
        #expect(ipv6.router == nil)
        #expect(plan.warnings.contains { $0.contains("fd00:45::1") && $0.contains("no IPv6 default route") }, "\(plan.warnings)")
        #expect(plan.interfaces.first?.lease == nil, "no IPv4: no DHCPv4 lease")
    }

    @Test func dhcpOffStillMovesTheAddressesButServesNothing() throws {
        let namespace = try ContainerShape.dualStack.namespace()
        let inventory = try Inventory.read(from: namespace)
        let configuration = try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "ENABLE_DHCP": "no"])
        let planner = AttachPlanner(configuration: configuration, resolver: ResolverConfiguration(), hostname: nil)
        let selected = InterfaceSelection.selected(try InterfaceSelection.decide(inventory, selection: configuration.selection))
        var generator = SeededGenerator(state: 7)
        let interface = try #require(try planner.plan(selected: selected, inventory: inventory, using: &generator).interfaces.first)
        #expect(interface.ipv6?.movedAddresses == [IPv6Interface("fd00:44::7/64")!])
        #expect(interface.ipv6?.served == false)
        #expect(interface.ipv6Lease == nil)
    }

    @Test func anIPv6SelectedNetworkPicksTheAddresses() throws {
        let namespace = try ContainerShape.ipv6Only.namespace()
        var shape = ContainerShape.ipv6Only
        shape.environment["SELECTED_NETWORK"] = "2001:db8:45::/48"
        let plan = try makeAttachPlan(for: namespace, shape: shape, mode: .macvtap)
        #expect(plan.interfaces.first?.ipv6?.movedAddresses == [IPv6Interface("2001:db8:45::9/64")!])
        let steps = Attacher.steps(for: plan)
        #expect(steps.contains(.moveIPv6AddressesOff([IPv6Interface("2001:db8:45::9/64")!], interface: "eth0")))
    }

    @Test(arguments: modes)
    func whileAttachedTheContainerHasNeitherTheVMsAddressesNorItsLinkLocal(_ mode: LaunchConfiguration.NetworkMode) throws {
        let namespace = try ContainerShape.ipv6Only.namespace()
        let start = namespace.copy()
        let plan = try makeAttachPlan(for: namespace, shape: .ipv6Only, mode: mode)
        let interface = try #require(plan.interfaces.first)
        let attacher = attacher(namespace)
        _ = try attacher.apply(plan)
        let onLink = namespace.state.addresses.filter { $0.interfaceIndex == interface.index }.compactMap(\.ipv6)
        #expect(onLink == [IPv6Interface(address: .linkLocal(eui64: interface.containerMAC), prefixLength: 64)],
                "only the link-local address of the new MAC is left: \(onLink)")
        #expect(namespace.state.routes.contains { $0.family == .inet6 && $0.destination == ip("fe80::") && $0.interfaceIndex == interface.index },
                "the fe80::/64 route stays through the swap")
        let identity = try #require(RecordedIdentity(alias: namespace.state.links.first { $0.index == interface.index }?.alias))
        #expect(identity.ipv6Addresses == interface.ipv6?.movedAddresses)
        #expect(identity.ipv6Flags == [0x02, 0x02], "nodad is recorded, to be restored")
        #expect(identity.linkLocalPrefixLength == 64)
        #expect(attacher.teardown().isEmpty)
        expectPristine(namespace, like: start, "after teardown")
    }

    @Test func dryRunShowsTheIPv6Plan() throws {
        let namespace = try ContainerShape.dualStack.namespace()
        let plan = try makeAttachPlan(for: namespace, shape: .dualStack, mode: .macvtap)
        let text = PlanReport.text(plan)
        #expect(text.contains("guest IPv6     fd00:44::7/64 (moved off eth0)"), "\(text)")
        #expect(text.contains("RA + DHCPv6    router fe80::ecee:eeff:feee:eeee"), "\(text)")
        #expect(text.contains("link-local     fe80::42:aff:fe2c:7/64 -> fe80::"), "\(text)")
        let json = PlanReport.json(plan)
        #expect(json.contains("\"movedAddresses\""), "\(json)")
        #expect(json.contains("\"linkLocalSwap\""))
        #expect(json.contains("move fd00:44::7/64 off eth0"))
        let count = try #require(json.split(separator: "\n").first { $0.contains("\"attachStepCount\"") })
        #expect(count.contains("\(Attacher.steps(for: plan).count)"))
    }

    @Test func theAliasKeepsTheIPv6StateWithinItsLimit() throws {
        let mac = MACAddress("02:42:0a:2c:00:07")!
        let many = (1...8).map { IPv6Interface("2001:db8:ffff:ffff:ffff:ffff:ffff:\(String($0, radix: 16))/64")! }
        let identity = RecordedIdentity(mac: mac, address: IPv4Interface("10.44.0.7/16"), broadcast: IPv4Address("10.44.255.255"),
                                        routes: [RecordedRoute(destination: IPv4Interface("0.0.0.0/0")!, gateway: IPv4Address("10.44.0.1"))],
                                        previousAlias: "uplink", ipv6Addresses: many, linkLocalPrefixLength: 64)
        let (alias, droppedRoutes, droppedIPv6) = identity.encoded()
        #expect(alias.utf8.count <= RecordedIdentity.maximumLength)
        #expect(droppedIPv6 > 0 && droppedIPv6 < many.count, "some fit, the rest are counted: \(droppedIPv6)")
        let decoded = try #require(RecordedIdentity(alias: alias))
        #expect(decoded.ipv6Addresses == Array(many.prefix(many.count - droppedIPv6)))
        #expect(decoded.linkLocalPrefixLength == 64)
        #expect(decoded.previousAlias == "uplink")
        #expect(droppedRoutes == 1 - decoded.routes.count)

        let small = RecordedIdentity(mac: mac, address: nil, routes: [], previousAlias: nil, ipv6Addresses: [IPv6Interface("fd00:44::7/64")!], linkLocalPrefixLength: 64)
        #expect(small.encoded().alias == "kvm-launch:v1 m=02:42:0a:2c:00:07 l=64 6=fd00:44::7/64")
        #expect(RecordedIdentity(alias: small.encoded().alias) == small)
        #expect(RecordedIdentity(alias: "kvm-launch:v1 m=02:42:0a:2c:00:07 6=not-an-address") == nil)
        let flagged = RecordedIdentity(mac: mac, address: nil, routes: [], previousAlias: nil, ipv6Addresses: [IPv6Interface("fd00:44::7/64")!, IPv6Interface("fd00:44::8/64")!],
                                       ipv6Flags: [0x02, 0])
        #expect(flagged.encoded().alias == "kvm-launch:v1 m=02:42:0a:2c:00:07 6=fd00:44::7/64~2,fd00:44::8/64")
        #expect(RecordedIdentity(alias: flagged.encoded().alias) == flagged)
        #expect(flagged.ipv6AddressRecords(interfaceIndex: 3).map(\.flags) == [0x02, 0])
        #expect(RecordedIdentity(alias: "kvm-launch:v1 m=02:42:0a:2c:00:07 6=fd00:44::7/64~zz") == nil)
        #expect(RecordedIdentity(alias: "kvm-launch:v1 m=02:42:0a:2c:00:07 l=129") == nil)
    }

    /// A lease the responder would refuse (here a search domain with a 64-byte label) is found at plan
    /// time: the addresses stay on the container, a warning says why, and nothing is attached for IPv6.
    @Test func aLeaseTheResponderWouldRefuseLeavesTheAddressesOnTheContainer() throws {
        let namespace = try ContainerShape.dualStack.namespace()
        let inventory = try Inventory.read(from: namespace)
        let configuration = try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes"])
        let bad = String(repeating: "a", count: 64) + ".example"
        let planner = AttachPlanner(configuration: configuration, resolver: ResolverConfiguration(parsing: "nameserver fd00:53::53\nsearch \(bad)\n"), hostname: nil)
        let selected = InterfaceSelection.selected(try InterfaceSelection.decide(inventory, selection: configuration.selection))
        var generator = SeededGenerator(state: 7)
        let plan = try planner.plan(selected: selected, inventory: inventory, using: &generator)
        let interface = try #require(plan.interfaces.first)
        #expect(interface.ipv6 == nil)
        #expect(!Attacher.steps(for: interface).contains { if case .moveIPv6AddressesOff = $0 { true } else { false } })
        #expect(plan.warnings.contains { $0.contains("IPv6 addresses stay on the container") }, "\(plan.warnings)")
    }

    @Test func resolvConfIPv6ServersGoToTheDHCPv6Answer() {
        let resolver = ResolverConfiguration(parsing: "nameserver 10.0.0.10\nnameserver fd00:53::53\nnameserver fe80::1%eth0\nsearch svc\n")
        #expect(resolver.nameServers == [IPv4Address("10.0.0.10")!])
        #expect(resolver.ipv6NameServers == [IPv6Address("fd00:53::53")!])
    }

    /// A death between the two halves of the link-local swap (new one added, old one still there):
    /// recovery still converges, adding nothing twice.
    @Test func recoveryAfterAHalfDoneSwap() throws {
        let namespace = try ContainerShape.dualStack.namespace()
        let clean = namespace.copy()
        let plan = try makeAttachPlan(for: namespace, shape: .dualStack, mode: .macvtap)
        let interface = try #require(plan.interfaces.first)
        _ = try attacher(namespace).apply(plan)
        // Undo only the removal half by hand: the original link-local is back, the new one still there.
        let original = try #require(interface.linkLocalSwap?.original.first)
        try namespace.addAddress(original)
        namespace.processDied()
        let recovery = RecoveryPlan(try Inventory.read(from: namespace))
        #expect(recovery.steps.contains { if case .removeAddress = $0 { true } else { false } })
        #expect(!recovery.steps.contains(.addAddress(name: "eth0", original)), "the original link-local is there: not added again")
        try attacher(namespace).recover(recovery)
        expectPristine(namespace, like: clean, "recovered")
    }
}
