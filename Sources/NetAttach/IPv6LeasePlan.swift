import IPv6Server
import Netlink
import NetworkTypes

/// What the VM gets over IPv6 on one interface, and which container addresses move to it. Pure.
package struct IPv6LeasePlan: Sendable, Equatable {
    /// nil when the interface has no global IPv6 address (the VM gets no RA/DHCPv6 there).
    package var lease: IPv6Lease?
    /// The container's IPv6 addresses that move to the VM (removed while it runs, restored after).
    package var movedAddresses: [AddressRecord]
    package var warnings: [String]

    /// Plans one interface from the inventory.
    ///
    /// - The VM gets every global address of the link (unique local included), or with
    ///   `selected` (an IPv6 `SELECTED_NETWORK`) those inside it; link-local addresses stay.
    /// - The router is the IPv6 default route's gateway through the link when it is link-local
    ///   (Calico); when it is global (Docker) the gateway's link-local address must be given as
    ///   `gateway` (learned on the link, see ``gatewayQuestions(selected:planned:current:)``), else
    ///   the VM gets prefixes but no default route, and a warning says so (with the answer's reason).
    package static func plan(
        link: LinkRecord, guestMAC: MACAddress, inventory: Inventory, selected: IPv6Interface?,
        dnsServers: [IPv6Address], searchDomains: [String], gateway answer: IPv6GatewayAnswer? = nil
    ) -> IPv6LeasePlan {
        var warnings: [String] = []
        let records = inventory.addresses(on: link.index).filter { $0.family == .inet6 }
        let global = records.compactMap { record -> (AddressRecord, IPv6Interface)? in
            guard let address = record.address.ipv6, address.isGlobalUnicast,
                  (0...128).contains(record.prefixLength) else { return nil }
            return (record, IPv6Interface(address: address, prefixLength: record.prefixLength))
        }
        var chosen = global
        if let selected {
            chosen = global.filter { selected.contains($0.1.address) }
            if chosen.isEmpty, !global.isEmpty {
                warnings.append("\(link.name) has \(global.map(\.1.description).joined(separator: ", ")) and none is inside SELECTED_NETWORK=\(selected); the VM gets all of them")
                chosen = global
            }
        }
        guard !chosen.isEmpty else { return IPv6LeasePlan(lease: nil, movedAddresses: [], warnings: warnings) }

        var router: IPv6Address?
        if let gateway = defaultGateway(of: link, in: inventory) {
            if gateway.isLinkLocal {
                router = gateway
            } else if case .learned(let linkLocal) = answer, linkLocal.isLinkLocal {
                router = linkLocal
            } else {
                let reason: String
                if case .unknown(let why) = answer { reason = why } else { reason = "the IPv6 gateway \(gateway) is not link-local and its link-local address is unknown" }
                warnings.append("\(link.name): \(reason); the VM gets its IPv6 addresses but no IPv6 default route")
            }
        }
        let usableServers = dnsServers.filter { !$0.isLoopback && !$0.isUnspecified && !$0.isMulticast }
        let lease = IPv6Lease(clientMAC: guestMAC, addresses: chosen.map(\.1), dnsServers: usableServers,
                              searchDomains: searchDomains, router: router, mtu: link.mtu >= 1280 ? link.mtu : nil)
        return IPv6LeasePlan(lease: lease, movedAddresses: chosen.map(\.0), warnings: warnings)
    }
}

extension IPv6LeasePlan {
    /// The gateway of the IPv6 default route through `link`, if any.
    static func defaultGateway(of link: LinkRecord, in inventory: Inventory) -> IPv6Address? {
        inventory.routes(through: link.index, family: .inet6)
            .first { $0.isDefault && $0.gateway != nil }?.gateway?.ipv6
    }

    /// The selected links whose IPv6 default gateway is a global address and that have global
    /// addresses for the VM: their gateway's link-local address must be learned on the link (the
    /// one network exchange before the first change) for the VM to get a default route.
    ///
    /// - Parameters:
    ///   - planned: the inventory the plan is made from (a killed launcher's leftovers restored).
    ///   - current: the namespace as it is now, where the probe asks from: the link's link-local
    ///     address there (nil when it has none).
    package static func gatewayQuestions(selected: [LinkRecord], planned: Inventory, current: Inventory) -> [IPv6GatewayQuestion] {
        selected.compactMap { link in
            guard let gateway = defaultGateway(of: link, in: planned), gateway.isGlobalUnicast,
                  planned.addresses(on: link.index).contains(where: { $0.family == .inet6 && $0.address.ipv6?.isGlobalUnicast == true })
            else { return nil }
            let linkLocal = current.addresses(on: link.index)
                .compactMap { $0.family == .inet6 ? $0.address.ipv6 : nil }
                .first { $0.isLinkLocal }
            return IPv6GatewayQuestion(interfaceIndex: link.index, interfaceName: link.name, gateway: gateway, localLinkLocal: linkLocal)
        }
    }
}

/// A global IPv6 gateway whose link-local address is to be learned on `interfaceName`'s link.
package struct IPv6GatewayQuestion: Sendable, Equatable {
    package var interfaceIndex: Int32
    package var interfaceName: String
    /// The global gateway address of the default route.
    package var gateway: IPv6Address
    /// The probe's source: the link's own link-local address now (nil: none).
    package var localLinkLocal: IPv6Address?

    package init(interfaceIndex: Int32, interfaceName: String, gateway: IPv6Address, localLinkLocal: IPv6Address?) {
        self.interfaceIndex = interfaceIndex
        self.interfaceName = interfaceName
        self.gateway = gateway
        self.localLinkLocal = localLinkLocal
    }
}

/// What was learned about a global IPv6 gateway, per interface, for ``AttachPlanner``.
package enum IPv6GatewayAnswer: Sendable, Equatable {
    /// Its link-local address on the link: the Router Advertisements' source, the VM's next hop.
    case learned(IPv6Address)
    /// Unknown, and why (said in the plan's warning).
    case unknown(String)
}

/// Issue 10 item 14: while the VM runs, the container interface must not keep the link-local
/// address made from the original MAC (the VM makes the same one: a duplicate on the link). The
/// kernel does not renew it when the MAC changes, so the attach removes it and adds the one made
/// from the new MAC; teardown does the reverse. Pure: which records to remove and add.
package struct LinkLocalSwap: Sendable, Equatable, Codable {
    /// The container's link-local addresses made from the original MAC (removed at attach, restored at teardown).
    package var original: [AddressRecord]
    /// fe80::EUI-64(new MAC)/64 (added at attach, removed at teardown); nil when nothing is swapped.
    package var replacement: AddressRecord?

    /// The swap for `link` in `inventory` when its MAC becomes `newMAC`; empty when the link has no
    /// link-local address from its current MAC (IPv6 off, or stable-privacy addresses, which do not
    /// collide with the VM's EUI-64 one).
    package static func plan(link: LinkRecord, newMAC: MACAddress, inventory: Inventory) -> LinkLocalSwap {
        guard let mac = link.mac else { return LinkLocalSwap(original: [], replacement: nil) }
        let fromMAC = IPv6Address.linkLocal(eui64: mac)
        let original = inventory.addresses(on: link.index).filter {
            $0.family == .inet6 && $0.address.ipv6 == fromMAC
        }
        guard !original.isEmpty else { return LinkLocalSwap(original: [], replacement: nil) }
        let replacement = AddressRecord(interfaceIndex: link.index, family: .inet6,
                                        address: .v6(IPv6Address.linkLocal(eui64: newMAC)),
                                        prefixLength: original[0].prefixLength, scope: 253)
        return LinkLocalSwap(original: original, replacement: replacement)
    }
}
