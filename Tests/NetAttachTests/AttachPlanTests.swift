import InMemoryNetlink
import Testing
import LaunchConfiguration
import Netlink
import NetworkTypes
@testable import NetAttach

/// A seeded generator so plans are reproducible in tests.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state
    }
}

private let eth0MAC = MACAddress("02:42:0a:2a:00:07")!
private let eth1MAC = MACAddress("02:42:c0:a8:05:02")!

/// eth0: two addresses, a default route and a service route; eth1: one address, no gateway.
private func containerInventory() -> Inventory {
    Inventory(links: [
        LinkRecord(index: 1, name: "lo", kind: "loopback"),
        LinkRecord(index: 5, name: "eth0", kind: "veth", mac: eth0MAC, mtu: 1450),
        LinkRecord(index: 8, name: "eth1", kind: "veth", mac: eth1MAC, mtu: 1500),
    ], addresses: [
        AddressRecord(interfaceIndex: 5, family: .inet, address: ip("10.42.0.7"), prefixLength: 16),
        AddressRecord(interfaceIndex: 5, family: .inet, address: ip("172.20.0.7"), prefixLength: 24),
        AddressRecord(interfaceIndex: 8, family: .inet, address: ip("192.168.5.2"), prefixLength: 24),
    ], routes: [
        RouteRecord(family: .inet, destination: ip("0.0.0.0"), prefixLength: 0, gateway: ip("10.42.0.1"), interfaceIndex: 5),
        RouteRecord(family: .inet, destination: ip("10.42.0.0"), prefixLength: 16, interfaceIndex: 5, routeProtocol: .kernel, scope: 253),
        RouteRecord(family: .inet, destination: ip("172.20.0.0"), prefixLength: 24, interfaceIndex: 5, routeProtocol: .kernel, scope: 253),
        RouteRecord(family: .inet, destination: ip("10.96.0.0"), prefixLength: 12, gateway: ip("10.42.0.1"), interfaceIndex: 5),
        RouteRecord(family: .inet, destination: ip("192.168.5.0"), prefixLength: 24, interfaceIndex: 8, routeProtocol: .kernel, scope: 253),
    ])
}

private func makePlanner(_ environment: [String: String], resolv: String = "nameserver 10.43.0.10\nsearch default.svc.cluster.local svc.cluster.local\n") throws -> AttachPlanner {
    AttachPlanner(configuration: try LaunchConfiguration(environment: environment),
                  resolver: ResolverConfiguration(parsing: resolv), hostname: "pod-0")
}

private func makePlan(_ environment: [String: String], inventory: Inventory = containerInventory(), resolv: String? = nil) throws -> AttachPlan {
    let planner = try resolv.map { try makePlanner(environment, resolv: $0) } ?? makePlanner(environment)
    let selected = InterfaceSelection.selected(try InterfaceSelection.decide(inventory, selection: planner.configuration.selection))
    var generator = SeededGenerator(state: 42)
    return try planner.plan(selected: selected, inventory: inventory, using: &generator)
}

@Suite struct AttachPlanTests {
    @Test func macvtapPlanCarriesIdentityAddressesAndLease() throws {
        let plan = try makePlan(["AUTO_ATTACH": "yes"])
        #expect(plan.interfaces.map(\.name) == ["eth0", "eth1"])
        let eth0 = plan.interfaces[0]
        #expect(eth0.mode == .macvtap)
        #expect(eth0.guestMAC == eth0MAC)
        #expect(eth0.containerMAC != eth0MAC)
        #expect(eth0.containerMAC.isLocallyAdministered && !eth0.containerMAC.isMulticast)
        #expect(eth0.guestAddress == IPv4Interface("10.42.0.7/16"))
        #expect(eth0.keptAddresses == [IPv4Interface("172.20.0.7/24")!])
        #expect(eth0.gateway == IPv4Address("10.42.0.1"))
        #expect(eth0.vmLinkName == "kltap5")
        #expect(eth0.containerSideName == "klsrv5")
        #expect(eth0.containerSideAddress.address.isLinkLocal)
        #expect(eth0.containerSideAddress.prefixLength == 16)
        let lease = try #require(eth0.lease)
        #expect(lease.clientMAC == eth0MAC)
        #expect(lease.address == IPv4Interface("10.42.0.7/16"))
        #expect(lease.router == IPv4Address("10.42.0.1"))
        #expect(lease.staticRoutes == [RecordedRoute(destination: IPv4Interface("10.96.0.0/12")!, gateway: IPv4Address("10.42.0.1"))])
        #expect(lease.dnsServers == [IPv4Address("10.43.0.10")!])
        #expect(lease.searchDomains == ["default.svc.cluster.local", "svc.cluster.local"])
        #expect(lease.domainName == "default.svc.cluster.local")
        #expect(lease.hostname == "pod-0")
        #expect(lease.mtu == 1450)
        #expect(lease.serverIdentifier == eth0.containerSideAddress.address)
        #expect(lease.leaseSeconds == 0xFFFF_FFFF)
        #expect(plan.interfaces[1].lease?.router == nil, "no default route through eth1")
    }

    @Test func selectedNetworkPicksAmongSeveralAddresses() throws {
        let plan = try makePlan(["AUTO_ATTACH": "yes", "SELECTED_NETWORK": "172.20.0.0/24"])
        #expect(plan.interfaces[0].guestAddress == IPv4Interface("172.20.0.7/24"))
        #expect(plan.interfaces[0].keptAddresses == [IPv4Interface("10.42.0.7/16")!])
        #expect(plan.interfaces[1].guestAddress == IPv4Interface("192.168.5.2/24"), "one address: SELECTED_NETWORK does not matter")
        #expect(plan.warnings.isEmpty)
    }

    @Test func unmatchedSelectedNetworkWarnsAndUsesTheFirst() throws {
        let plan = try makePlan(["AUTO_ATTACH": "yes", "SELECTED_NETWORK": "10.99.0.0/16"])
        #expect(plan.interfaces[0].guestAddress == IPv4Interface("10.42.0.7/16"))
        #expect(plan.warnings.contains { $0.contains("SELECTED_NETWORK=10.99.0.0/16") })
    }

    @Test func bridgeModeNamesBridgeAndTap() throws {
        let plan = try makePlan(["AUTO_ATTACH": "no", "ATTACH_IFACES": "eth1", "USE_NET_BRIDGES": "yes"])
        #expect(plan.interfaces.count == 1)
        let eth1 = plan.interfaces[0]
        #expect(eth1.mode == .bridge)
        #expect(eth1.bridgeName == "klbr8")
        #expect(eth1.containerSideName == "klbr8")
        #expect(eth1.vmLinkName == "kltap8")
    }

    @Test func calicoStyleSlash32GetsHostRouteToGateway() throws {
        let inventory = Inventory(links: [LinkRecord(index: 3, name: "eth0", kind: "veth", mac: eth0MAC)], addresses: [
            AddressRecord(interfaceIndex: 3, family: .inet, address: ip("10.244.1.9"), prefixLength: 32),
        ], routes: [
            RouteRecord(family: .inet, destination: ip("169.254.1.1"), prefixLength: 32, interfaceIndex: 3, scope: 253),
            RouteRecord(family: .inet, destination: ip("0.0.0.0"), prefixLength: 0, gateway: ip("169.254.1.1"), interfaceIndex: 3),
        ])
        let lease = try #require(try makePlan(["AUTO_ATTACH": "yes"], inventory: inventory).interfaces[0].lease)
        #expect(lease.router == nil, "the gateway is not inside a /32")
        #expect(lease.staticRoutes == [
            RecordedRoute(destination: IPv4Interface("169.254.1.1/32")!, gateway: nil),
            RecordedRoute(destination: IPv4Interface("0.0.0.0/0")!, gateway: IPv4Address("169.254.1.1")),
        ])
    }

    /// Issue 11 item 3: a loopback resolver (Docker's 127.0.0.11) is replaced by a relay on the
    /// interface's container-side address, which the VM reaches on the link.
    @Test func loopbackNameServersAreRelayedFromTheContainerSideAddress() throws {
        let plan = try makePlan(["AUTO_ATTACH": "yes"], resolv: "nameserver 127.0.0.11\nnameserver 10.0.0.2\nnameserver 127.0.0.53\noptions ndots:0\n")
        for interface in plan.interfaces {
            let relay = interface.containerSideAddress.address
            #expect(interface.lease?.dnsServers == [relay, IPv4Address("10.0.0.2")!])
            #expect(interface.dnsRelay == PlannedDNSRelay(listenAddress: relay, upstreams: [IPv4Address("127.0.0.11")!, IPv4Address("127.0.0.53")!],
                                                          clients: [interface.guestAddress!.address]))
            #expect(interface.lease?.staticRoutes.first == RecordedRoute(destination: IPv4Interface(address: relay, prefixLength: 32), gateway: nil))
            #expect(interface.dnsRelay?.relayConfiguration.port == 53)
        }
        #expect(plan.interfaces[0].dnsRelay?.listenAddress != plan.interfaces[1].dnsRelay?.listenAddress)
        #expect(!plan.warnings.contains { $0.contains("127.0.0.11") })
        #expect(PlanReport.text(plan).contains("DNS relay      \(plan.interfaces[0].containerSideAddress.address):53 -> 127.0.0.11, 127.0.0.53"))
    }

    @Test func explicitOrNetworkNameServersNeedNoRelay() throws {
        let explicit = try makePlan(["AUTO_ATTACH": "yes", "DNS_SERVERS": "9.9.9.9"], resolv: "nameserver 127.0.0.11\n")
        #expect(explicit.interfaces[0].lease?.dnsServers == [IPv4Address("9.9.9.9")!])
        #expect(explicit.interfaces.allSatisfy { $0.dnsRelay == nil })
        #expect(explicit.warnings.isEmpty)
        let network = try makePlan(["AUTO_ATTACH": "yes"], resolv: "nameserver 10.0.0.2\nnameserver 0.0.0.0\n")
        #expect(network.interfaces[0].lease?.dnsServers == [IPv4Address("10.0.0.2")!])
        #expect(network.interfaces.allSatisfy { $0.dnsRelay == nil })
        #expect(network.interfaces[1].lease?.staticRoutes.isEmpty == true, "no relay, no route to it")
        let noDHCP = try makePlan(["AUTO_ATTACH": "yes", "ENABLE_DHCP": "no"], resolv: "nameserver 127.0.0.11\n")
        #expect(noDHCP.interfaces.allSatisfy { $0.dnsRelay == nil }, "no lease names the relay, so there is none")
    }

    @Test func dhcpOffMeansNoLease() throws {
        let plan = try makePlan(["AUTO_ATTACH": "yes", "ENABLE_DHCP": "no"])
        #expect(plan.interfaces.allSatisfy { $0.lease == nil })
    }

    @Test func containerSideAddressIsDeterministicLinkLocalOrWidenedOnRequest() throws {
        let first = try makePlan(["AUTO_ATTACH": "yes"]).interfaces.map(\.containerSideAddress)
        let again = try makePlan(["AUTO_ATTACH": "yes"]).interfaces.map(\.containerSideAddress)
        #expect(first == again)
        #expect(first[0] != first[1])
        let widened = try makePlan(["AUTO_ATTACH": "yes", "CONTAINER_SIDE_ADDRESS": "widen-prefix"]).interfaces[0]
        #expect(widened.containerSideAddress == IPv4Interface("10.43.0.7/15"))
    }

    @Test func linkWithoutMACCannotBeAttached() {
        let inventory = Inventory(links: [LinkRecord(index: 4, name: "tun0", kind: "tun", mac: nil)])
        #expect(throws: PlanError.noMAC(interface: "tun0")) { try makePlan(["AUTO_ATTACH": "yes"], inventory: inventory) }
    }
}

@Suite struct RecordedIdentityTests {
    @Test func roundTripsThroughTheAlias() throws {
        let identity = RecordedIdentity(mac: eth0MAC, address: IPv4Interface("10.42.0.7/16"), routes: [
            RecordedRoute(destination: IPv4Interface("0.0.0.0/0")!, gateway: IPv4Address("10.42.0.1"), metric: 100),
            RecordedRoute(destination: IPv4Interface("169.254.1.1/32")!, gateway: nil),
        ], previousAlias: "uplink to rack 7 (100% fine)", secondaries: [IPv4Interface("10.42.0.8/16")!])
        let (alias, dropped, _) = identity.encoded()
        #expect(dropped == 0)
        #expect(alias.utf8.count <= 255)
        #expect(!alias.contains("uplink to"), "the old alias is escaped, so spaces cannot split fields")
        #expect(RecordedIdentity(alias: alias) == identity)
        #expect(RecordedIdentity.isRecorded(alias))
    }

    @Test func notAnIdentity() {
        #expect(RecordedIdentity(alias: nil) == nil)
        #expect(RecordedIdentity(alias: "just a description") == nil)
        #expect(RecordedIdentity(alias: "kvm-launch:created") == nil)
        #expect(RecordedIdentity(alias: "kvm-launch:v1 a=10.0.0.1/24") == nil, "no MAC")
        #expect(RecordedIdentity(alias: "kvm-launch:v1 m=02:00:00:00:00:01 q=1") == nil, "unknown field")
    }

    @Test func tooManyRoutesKeepTheDefaultRouteAndFit() throws {
        var routes = (0..<40).map { RecordedRoute(destination: IPv4Interface(address: IPv4Address(10, UInt8($0), 0, 0), prefixLength: 16), gateway: IPv4Address(10, 0, 0, 1)) }
        routes.append(RecordedRoute(destination: IPv4Interface("0.0.0.0/0")!, gateway: IPv4Address("10.0.0.1")))
        let identity = RecordedIdentity(mac: eth0MAC, address: IPv4Interface("10.0.0.5/8"), routes: routes, previousAlias: nil)
        let (alias, dropped, _) = identity.encoded()
        #expect(alias.utf8.count <= 255)
        #expect(dropped > 0)
        let decoded = try #require(RecordedIdentity(alias: alias))
        #expect(decoded.routes.first?.destination.prefixLength == 0)
        #expect(decoded.routes.count == routes.count - dropped)
    }

    @Test func previewOfRecoveryRestoresIdentityAndDropsOwnLinks() throws {
        let identity = RecordedIdentity(mac: eth0MAC, address: IPv4Interface("10.42.0.7/16"), routes: [
            RecordedRoute(destination: IPv4Interface("0.0.0.0/0")!, gateway: IPv4Address("10.42.0.1")),
        ], previousAlias: nil)
        let dirty = Inventory(links: [
            LinkRecord(index: 5, name: "eth0", kind: "veth", mac: MACAddress("06:11:22:33:44:55"), alias: identity.encoded().alias),
            LinkRecord(index: 9, name: "kltap5", kind: "macvtap", mac: eth0MAC, lowerIndex: 5, alias: LinkMarker.createdAlias),
        ])
        let clean = dirty.restoringRecordedIdentities()
        #expect(clean.links.map(\.name) == ["eth0"])
        #expect(clean.links[0].mac == eth0MAC)
        #expect(clean.links[0].alias == nil)
        #expect(clean.ipv4Addresses(on: 5) == [IPv4Interface("10.42.0.7/16")!])
        #expect(clean.routes(through: 5).first?.gateway == ip("10.42.0.1"))
    }
}

@Suite struct ResolverConfigurationTests {
    @Test func parsesServersDomainAndLastSearchLine() {
        let resolver = ResolverConfiguration(parsing: """
            # generated
            nameserver 10.0.0.2
            nameserver fd00::53
            nameserver bogus
            domain corp.example
            search old.example
            search a.example b.example ; comment
            options ndots:5
            """)
        #expect(resolver.nameServers == [IPv4Address("10.0.0.2")!])
        #expect(resolver.domain == "corp.example")
        #expect(resolver.searchDomains == ["a.example", "b.example"])
    }
}
