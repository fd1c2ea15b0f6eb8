import IPv6Server
import Netlink
import NetworkTypes

/// What the VM gets over IPv6 on one interface, and which container addresses move to it. Pure.
public struct IPv6LeasePlan: Sendable, Equatable {
    /// nil when the interface has no global IPv6 address (the VM gets no RA/DHCPv6 there).
    public var lease: IPv6Lease?
    /// The container's IPv6 addresses that move to the VM (removed while it runs, restored after).
    public var movedAddresses: [AddressRecord]
    public var warnings: [String]

    /// Plans one interface from the inventory.
    ///
    /// - The VM gets every global address of the link (unique local included), or with
    ///   `selected` (an IPv6 `SELECTED_NETWORK`) those inside it; link-local addresses stay.
    /// - The router is the IPv6 default route's gateway through the link when it is link-local
    ///   (Calico); when it is global (Docker) the gateway's link-local address must be given as
    ///   `gatewayLinkLocal` (learned on the link), else the VM gets prefixes but no default route,
    ///   and a warning says so.
    public static func plan(
        link: LinkRecord, guestMAC: MACAddress, inventory: Inventory, selected: IPv6Interface?,
        dnsServers: [IPv6Address], searchDomains: [String], gatewayLinkLocal: IPv6Address? = nil
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

        let gateway = inventory.routes(through: link.index, family: .inet6)
            .first { $0.isDefault && $0.gateway != nil }?.gateway?.ipv6
        var router: IPv6Address?
        if let gateway {
            if gateway.isLinkLocal {
                router = gateway
            } else if let gatewayLinkLocal, gatewayLinkLocal.isLinkLocal {
                router = gatewayLinkLocal
            } else {
                warnings.append("\(link.name): the IPv6 gateway \(gateway) is not link-local and its link-local address is unknown; the VM gets its IPv6 addresses but no IPv6 default route")
            }
        }
        let usableServers = dnsServers.filter { !$0.isLoopback && !$0.isUnspecified && !$0.isMulticast }
        let lease = IPv6Lease(clientMAC: guestMAC, addresses: chosen.map(\.1), dnsServers: usableServers,
                              searchDomains: searchDomains, router: router, mtu: link.mtu >= 1280 ? link.mtu : nil)
        return IPv6LeasePlan(lease: lease, movedAddresses: chosen.map(\.0), warnings: warnings)
    }
}

/// Issue 10 item 14: while the VM runs, the container interface must not keep the link-local
/// address made from the original MAC (the VM makes the same one: a duplicate on the link). The
/// kernel does not renew it when the MAC changes, so the attach removes it and adds the one made
/// from the new MAC; teardown does the reverse. Pure: which records to remove and add.
public struct LinkLocalSwap: Sendable, Equatable, Codable {
    /// The container's link-local addresses made from the original MAC (removed at attach, restored at teardown).
    public var original: [AddressRecord]
    /// fe80::EUI-64(new MAC)/64 (added at attach, removed at teardown); nil when nothing is swapped.
    public var replacement: AddressRecord?

    /// The swap for `link` in `inventory` when its MAC becomes `newMAC`; empty when the link has no
    /// link-local address from its current MAC (IPv6 off, or stable-privacy addresses, which do not
    /// collide with the VM's EUI-64 one).
    public static func plan(link: LinkRecord, newMAC: MACAddress, inventory: Inventory) -> LinkLocalSwap {
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
