import NetAttach
import Netlink
import NetworkTypes
import Testing

@Suite struct IPv6LeasePlanTests {
    static let mac = MACAddress("52:54:00:aa:bb:cc")!
    static let link = LinkRecord(index: 2, name: "eth0", kind: "veth", mac: mac, mtu: 1500)

    static func inventory(addresses: [(String, Int)], gateway: String?) -> Inventory {
        var records = [AddressRecord(interfaceIndex: 2, family: .inet, address: "172.18.0.2", prefixLength: 16)]
        records += addresses.map { AddressRecord(interfaceIndex: 2, family: .inet6, address: $0.0, prefixLength: $0.1, scope: $0.0.hasPrefix("fe80") ? 253 : 0) }
        records.append(AddressRecord(interfaceIndex: 3, family: .inet6, address: "fd00:99::1", prefixLength: 64))
        var routes: [RouteRecord] = []
        if let gateway { routes.append(RouteRecord(family: .inet6, destination: "::", prefixLength: 0, gateway: gateway, interfaceIndex: 2)) }
        return Inventory(links: [link], addresses: records, routes: routes)
    }

    @Test func calicoLinkLocalGatewayIsTheRouter() throws {
        let plan = IPv6LeasePlan.plan(link: Self.link, guestMAC: Self.mac,
                                      inventory: Self.inventory(addresses: [("fd00:ca1::5", 128), ("fe80::5054:ff:feaa:bbcc", 64)], gateway: "fe80::ecee:eeff:feee:eeee"),
                                      selected: nil, dnsServers: [IPv6Address("fd00:53::53")!, IPv6Address("::1")!], searchDomains: ["svc.cluster.local"])
        let lease = try #require(plan.lease)
        #expect(lease.addresses == [IPv6Interface("fd00:ca1::5/128")!])
        #expect(lease.router == IPv6Address("fe80::ecee:eeff:feee:eeee"))
        #expect(lease.dnsServers == [IPv6Address("fd00:53::53")!], "loopback servers never go to the VM")
        #expect(plan.movedAddresses.map(\.address) == ["fd00:ca1::5"], "the link-local address stays")
        #expect(plan.warnings.isEmpty)
        #expect(throws: Never.self) { try lease.validate() }
    }

    @Test func dockerGlobalGatewayNeedsItsLinkLocalAddress() throws {
        let inventory = Self.inventory(addresses: [("fd00:d0c::5", 64)], gateway: "fd00:d0c::1")
        let unknown = IPv6LeasePlan.plan(link: Self.link, guestMAC: Self.mac, inventory: inventory, selected: nil, dnsServers: [], searchDomains: [])
        #expect(unknown.lease?.router == nil)
        #expect(unknown.warnings.contains { $0.contains("no IPv6 default route") }, "\(unknown.warnings)")
        let known = IPv6LeasePlan.plan(link: Self.link, guestMAC: Self.mac, inventory: inventory, selected: nil, dnsServers: [], searchDomains: [],
                                       gateway: .learned(IPv6Address("fe80::42:acff:fe12:1")!))
        #expect(known.lease?.router == IPv6Address("fe80::42:acff:fe12:1"))
        #expect(known.lease?.addresses == [IPv6Interface("fd00:d0c::5/64")!])
        #expect(known.warnings.isEmpty, "\(known.warnings)")
        // Not learned: the probe's reason is the warning, the VM still gets its addresses.
        let silent = IPv6LeasePlan.plan(link: Self.link, guestMAC: Self.mac, inventory: inventory, selected: nil, dnsServers: [], searchDomains: [],
                                        gateway: .unknown("the IPv6 gateway fd00:d0c::1 did not answer a Neighbor Solicitation within 2.1 s"))
        #expect(silent.lease?.router == nil && silent.lease?.addresses == [IPv6Interface("fd00:d0c::5/64")!])
        #expect(silent.warnings == ["eth0: the IPv6 gateway fd00:d0c::1 did not answer a Neighbor Solicitation within 2.1 s; the VM gets its IPv6 addresses but no IPv6 default route"])
        // A learned address that is not link-local can never be an RA's source.
        let bogus = IPv6LeasePlan.plan(link: Self.link, guestMAC: Self.mac, inventory: inventory, selected: nil, dnsServers: [], searchDomains: [],
                                       gateway: .learned(IPv6Address("fd00:d0c::1")!))
        #expect(bogus.lease?.router == nil && !bogus.warnings.isEmpty)
    }

    @Test func onlyGlobalGatewaysOfLinksWithGlobalAddressesAreAskedAbout() throws {
        let docker = Self.inventory(addresses: [("fd00:d0c::5", 64), ("fe80::5054:ff:feaa:bbcc", 64)], gateway: "fd00:d0c::1")
        let questions = IPv6LeasePlan.gatewayQuestions(selected: [Self.link], planned: docker, current: docker)
        #expect(questions == [IPv6GatewayQuestion(interfaceIndex: 2, interfaceName: "eth0", gateway: IPv6Address("fd00:d0c::1")!,
                                                  localLinkLocal: IPv6Address("fe80::5054:ff:feaa:bbcc"))])
        // The probe asks from the link-local address the link has now (a killed launcher's swap).
        let swapped = Self.inventory(addresses: [("fe80::11:22ff:fe33:4455", 64)], gateway: nil)
        #expect(IPv6LeasePlan.gatewayQuestions(selected: [Self.link], planned: docker, current: swapped).first?.localLinkLocal
                == IPv6Address("fe80::11:22ff:fe33:4455"))
        #expect(IPv6LeasePlan.gatewayQuestions(selected: [Self.link], planned: docker, current: Self.inventory(addresses: [], gateway: nil))
                .first?.localLinkLocal == nil)
        let calico = Self.inventory(addresses: [("fd00:ca1::5", 128)], gateway: "fe80::ecee:eeff:feee:eeee")
        #expect(IPv6LeasePlan.gatewayQuestions(selected: [Self.link], planned: calico, current: calico).isEmpty, "a link-local gateway needs no question")
        let noAddress = Self.inventory(addresses: [("fe80::5054:ff:feaa:bbcc", 64)], gateway: "fd00:d0c::1")
        #expect(IPv6LeasePlan.gatewayQuestions(selected: [Self.link], planned: noAddress, current: noAddress).isEmpty, "no IPv6 for the VM, nothing to ask")
        #expect(IPv6LeasePlan.gatewayQuestions(selected: [], planned: docker, current: docker).isEmpty, "only selected links")
    }

    @Test func selectedNetworkPicksTheIPv6Addresses() {
        let inventory = Self.inventory(addresses: [("fd00:a::5", 64), ("2001:db8:1::5", 64)], gateway: nil)
        let all = IPv6LeasePlan.plan(link: Self.link, guestMAC: Self.mac, inventory: inventory, selected: nil, dnsServers: [], searchDomains: [])
        #expect(all.lease?.addresses.count == 2)
        let one = IPv6LeasePlan.plan(link: Self.link, guestMAC: Self.mac, inventory: inventory, selected: IPv6Interface("2001:db8::/32"),
                                     dnsServers: [], searchDomains: [])
        #expect(one.lease?.addresses == [IPv6Interface("2001:db8:1::5/64")!])
        #expect(one.movedAddresses.map(\.address) == ["2001:db8:1::5"])
        let none = IPv6LeasePlan.plan(link: Self.link, guestMAC: Self.mac, inventory: inventory, selected: IPv6Interface("2001:db9::/32"),
                                      dnsServers: [], searchDomains: [])
        #expect(none.lease?.addresses.count == 2 && none.warnings.count == 1)
    }

    @Test func noGlobalAddressNoLease() {
        let plan = IPv6LeasePlan.plan(link: Self.link, guestMAC: Self.mac,
                                      inventory: Self.inventory(addresses: [("fe80::5054:ff:feaa:bbcc", 64)], gateway: "fe80::1"),
                                      selected: nil, dnsServers: [], searchDomains: [])
        #expect(plan.lease == nil && plan.movedAddresses.isEmpty)
    }
}

@Suite struct LinkLocalSwapTests {
    @Test func theOriginalMACsLinkLocalIsReplacedByTheNewMACs() throws {
        let link = IPv6LeasePlanTests.link
        let inventory = IPv6LeasePlanTests.inventory(addresses: [("fd00:d0c::5", 64), ("fe80::5054:ff:feaa:bbcc", 64)], gateway: nil)
        let swap = LinkLocalSwap.plan(link: link, newMAC: MACAddress("02:11:22:33:44:55")!, inventory: inventory)
        #expect(swap.original.map(\.address) == ["fe80::5054:ff:feaa:bbcc"], "the VM makes this one from the same MAC")
        let replacement = try #require(swap.replacement)
        #expect(replacement.address == "fe80::11:22ff:fe33:4455" && replacement.prefixLength == 64 && replacement.family == .inet6)
        #expect(replacement.interfaceIndex == link.index)
    }

    @Test func nothingToSwapWithoutAnEUI64LinkLocal() {
        let link = IPv6LeasePlanTests.link
        // IPv6 off, or a stable-privacy link-local that does not derive from the MAC.
        for addresses in [[], [("fe80::1c2d:9a7f:3b4e:aa10", 64)]] {
            let swap = LinkLocalSwap.plan(link: link, newMAC: MACAddress("02:11:22:33:44:55")!,
                                          inventory: IPv6LeasePlanTests.inventory(addresses: addresses, gateway: nil))
            #expect(swap.original.isEmpty && swap.replacement == nil)
        }
    }
}
