import InMemoryNetlink
import Testing
import LaunchConfiguration
import Netlink
import NetworkTypes
@testable import NetAttach

/// Hand-written inventories: selection is pure and needs no namespace.
private func sampleInventory() -> Inventory {
    Inventory(links: [
        LinkRecord(index: 1, name: "lo", kind: "loopback", mtu: 65536),
        LinkRecord(index: 7, name: "eth1", kind: "veth", mac: MACAddress("02:00:00:00:00:02")),
        LinkRecord(index: 3, name: "eth0", kind: "veth", mac: MACAddress("02:00:00:00:00:01")),
        LinkRecord(index: 4, name: "br0", kind: "bridge"),
        LinkRecord(index: 5, name: "port0", kind: "veth", masterIndex: 4),
        LinkRecord(index: 6, name: "off0", kind: "veth", isUp: false),
        LinkRecord(index: 9, name: "kl-tap0", kind: "macvtap", lowerIndex: 3, alias: LinkMarker.createdAlias),
    ], addresses: [
        AddressRecord(interfaceIndex: 3, family: .inet6, address: ip("fd00::1"), prefixLength: 64),
        AddressRecord(interfaceIndex: 3, family: .inet, address: ip("10.0.0.5"), prefixLength: 24),
    ])
}

@Suite struct InterfaceSelectionTests {
    @Test func automaticSelectsByNameAndExplainsTheRest() throws {
        let decisions = try InterfaceSelection.decide(sampleInventory(), selection: .automatic)
        #expect(InterfaceSelection.selected(decisions).map(\.name) == ["eth0", "eth1"])
        let reasons = Dictionary(uniqueKeysWithValues: decisions.map { ($0.link.name, $0.reason) })
        #expect(reasons["lo"] == .loopback)
        #expect(reasons["br0"] == .bridge)
        #expect(reasons["port0"] == .bridgePort)
        #expect(reasons["off0"] == .down)
        #expect(reasons["kl-tap0"] == .createdByKVMLaunch)
        #expect(decisions.first { $0.link.name == "eth0" }?.order == 0)
        #expect(decisions.first { $0.link.name == "eth1" }?.order == 1)
    }

    /// Podman can create eth1 (and eth10) before eth0; Multus adds net1, net2, …: the NIC order is
    /// by name whatever the indexes are.
    @Test func automaticOrdersByNaturalNameNotByIndex() throws {
        let names = ["net2", "eth10", "eth1", "net10", "ens3", "eth0", "net1", "eth2"]
        var links = [LinkRecord(index: 1, name: "lo", kind: "loopback")]
        for (position, name) in names.enumerated() {
            links.append(LinkRecord(index: Int32(2 + position), name: name, kind: "veth", mac: MACAddress([2, 0, 0, 0, 0, UInt8(position + 1)])))
        }
        let decisions = try InterfaceSelection.decide(Inventory(links: links), selection: .automatic)
        let expected = ["eth0", "eth1", "eth2", "eth10", "ens3", "net1", "net2", "net10"]
        #expect(InterfaceSelection.selected(decisions).map(\.name) == expected)
        for decision in decisions where decision.attach {
            #expect(decision.order == expected.firstIndex(of: decision.link.name), "NIC position of \(decision.link.name)")
        }
        #expect(decisions.map(\.link.name) == ["lo"] + names, "the listing stays in index order")
    }

    @Test(arguments: [
        ("eth0", "eth1"), ("eth1", "eth2"), ("eth9", "eth10"), ("eth10", "eth11"), ("eth2", "eth10"),
        ("eth10", "net1"), ("eth99", "ens3"), ("ens3", "net1"), ("net1", "net2"), ("net2", "net10"),
        ("eth0", "eth0a"), ("eth0a", "eth1a"), ("eth01", "eth1"), ("a9", "a10"), ("net", "net0"),
    ])
    func naturalNameOrder(_ first: String, _ second: String) {
        #expect(InterfaceSelection.precedesInNICOrder(first, second))
        #expect(!InterfaceSelection.precedesInNICOrder(second, first))
    }

    @Test func theOrderIsTotalAndStrict() {
        let names = ["eth0", "eth00", "eth01", "eth1", "eth10", "eth1a", "net1", "net01", "a", "b2", "b10", "eth", "ethx"]
        for a in names {
            #expect(!InterfaceSelection.precedesInNICOrder(a, a))
            for b in names where a != b {
                #expect(InterfaceSelection.precedesInNICOrder(a, b) != InterfaceSelection.precedesInNICOrder(b, a), "\(a) vs \(b)")
            }
        }
    }

    @Test func namedKeepsTheGivenOrder() throws {
        let decisions = try InterfaceSelection.decide(sampleInventory(), selection: .named(["eth1", "off0", "eth0"]))
        #expect(InterfaceSelection.selected(decisions).map(\.name) == ["eth1", "off0", "eth0"])
        #expect(decisions.first { $0.link.name == "br0" }?.reason == .bridge)
    }

    @Test func namedEmptyAttachesNothing() throws {
        let decisions = try InterfaceSelection.decide(sampleInventory(), selection: .named([]))
        #expect(InterfaceSelection.selected(decisions).isEmpty)
        #expect(decisions.first { $0.link.name == "eth0" }?.reason == .notListed)
    }

    @Test func unknownNameListsExistingInterfaces() {
        #expect(throws: SelectionError.unknownInterface(name: "eth5", existing: ["lo", "eth0", "br0", "port0", "off0", "eth1", "kl-tap0"])) {
            try InterfaceSelection.decide(sampleInventory(), selection: .named(["eth0", "eth5"]))
        }
    }

    @Test(arguments: [("lo", ExclusionReason.loopback), ("port0", .bridgePort), ("kl-tap0", .createdByKVMLaunch)])
    func namedCannotTakeUnattachableLinks(_ name: String, _ reason: ExclusionReason) {
        #expect(throws: SelectionError.cannotAttach(name: name, reason: reason)) {
            try InterfaceSelection.decide(sampleInventory(), selection: .named([name]))
        }
    }

    @Test func portOfOwnBridgeStaysSelectedOnARerun() throws {
        var inventory = sampleInventory()
        inventory.links.append(LinkRecord(index: 10, name: "kl-br0", kind: "bridge", alias: LinkMarker.createdAlias))
        inventory.links[inventory.links.firstIndex { $0.name == "eth0" }!].masterIndex = 10
        let decisions = try InterfaceSelection.decide(inventory, selection: .automatic)
        #expect(InterfaceSelection.selected(decisions).map(\.name) == ["eth0", "eth1"])
        #expect(decisions.first { $0.link.name == "kl-br0" }?.reason == .createdByKVMLaunch)
    }

    /// Issue 10 item 11: an up TUN (no Ethernet frames, no MAC) is skipped with a reason, as bridges are.
    @Test func nonEthernetLinksAreSkippedWithAReason() throws {
        var inventory = sampleInventory()
        inventory.links.append(LinkRecord(index: 11, name: "tun0", kind: .tun, mac: nil, hardwareType: .none))
        inventory.links.append(LinkRecord(index: 12, name: "tap0", kind: .tun, mac: MACAddress("02:00:00:00:00:12")))
        let decisions = try InterfaceSelection.decide(inventory, selection: .automatic)
        #expect(decisions.first { $0.link.name == "tun0" }?.reason == .notEthernet)
        #expect(InterfaceSelection.selected(decisions).map(\.name) == ["eth0", "eth1", "tap0"], "a TAP carries Ethernet and stays attachable")
        let rows = InterfaceListing.rows(decisions, inventory: inventory)
        #expect(rows.first { $0.name == "tun0" }?.reason == "not Ethernet")
        #expect(throws: SelectionError.cannotAttach(name: "tun0", reason: .notEthernet)) {
            try InterfaceSelection.decide(inventory, selection: .named(["tun0"]))
        }
    }

    @Test func noSelectionListsButAttachesNothing() throws {
        let decisions = try InterfaceSelection.decide(sampleInventory(), selection: nil)
        #expect(decisions.allSatisfy { !$0.attach })
        #expect(decisions.first { $0.link.name == "eth0" }?.reason == .noSelection)
        #expect(decisions.first { $0.link.name == "lo" }?.reason == .loopback)
    }

    @Test func listingPutsIPv4FirstAndRendersBothForms() throws {
        let inventory = sampleInventory()
        let rows = InterfaceListing.rows(try InterfaceSelection.decide(inventory, selection: .automatic), inventory: inventory)
        let eth0 = try #require(rows.first { $0.name == "eth0" })
        #expect(eth0.addresses == ["10.0.0.5/24", "fd00::1/64"])
        let table = InterfaceListing.table(rows)
        #expect(table.split(separator: "\n").count == rows.count + 2, "header, one line per link, one continuation")
        #expect(table.contains("no: bridge port"))
        #expect(InterfaceListing.json(rows).contains("\"reason\" : \"loopback\""))
    }
}
