import NetworkTypes

/// One network interface as the kernel reports it (`RTM_NEWLINK`).
package struct LinkRecord: Hashable, Sendable, Codable {
    /// The interface index; unique inside one network namespace only.
    package var index: Int32
    package var name: String
    /// The link kind from `IFLA_INFO_KIND` (`veth`, `bridge`, `macvlan`, `macvtap`, `dummy`, `vlan`, `tun`, …),
    /// ``LinkKind/loopback`` for the loopback device, or ``LinkKind/ethernet`` for a device without link info (a NIC).
    package var kind: LinkKind
    /// The hardware address, when the link has an Ethernet-style one.
    package var mac: MACAddress?
    package var mtu: Int
    /// `IFF_UP`: administratively up.
    package var isUp: Bool
    /// `IFF_LOWER_UP`: carrier.
    package var hasCarrier: Bool
    /// RFC 2863 operational state (`up`, `down`, `lowerlayerdown`, `unknown`, …).
    package var operationalState: String
    /// The bridge (or bond) this link is a port of.
    package var masterIndex: Int32?
    /// The parent link in the same namespace (vlan, macvlan, macvtap); nil for a veth whose peer is elsewhere.
    package var lowerIndex: Int32?
    /// `IFLA_IFALIAS`, free text that survives as long as the link does.
    package var alias: String?
    /// `ARPHRD_*` hardware type: ``HardwareType/ethernet`` for anything that carries Ethernet frames.
    package var hardwareType: HardwareType
    /// `IFLA_GROUP`: the link group (0, the default group, for most links).
    package var group: UInt32

    package init(index: Int32, name: String, kind: LinkKind, mac: MACAddress? = nil, mtu: Int = 1500,
                isUp: Bool = true, hasCarrier: Bool = true, operationalState: String = "up",
                masterIndex: Int32? = nil, lowerIndex: Int32? = nil, alias: String? = nil, hardwareType: HardwareType = .ethernet,
                group: UInt32 = 0) {
        self.index = index
        self.name = name
        self.kind = kind
        self.mac = mac
        self.mtu = mtu
        self.isUp = isUp
        self.hasCarrier = hasCarrier
        self.operationalState = operationalState
        self.masterIndex = masterIndex
        self.lowerIndex = lowerIndex
        self.alias = alias
        self.hardwareType = hardwareType
        self.group = group
    }
}

/// Address family of an address or route.
package enum AddressFamily: String, Hashable, Sendable, Codable {
    case inet, inet6
}

/// One address on an interface (`RTM_NEWADDR`).
package struct AddressRecord: Hashable, Sendable, Codable {
    package var interfaceIndex: Int32
    package var family: AddressFamily
    /// The address (`10.0.0.2`, `fe80::1`), of ``family``.
    package var address: IPAddress
    package var prefixLength: Int
    /// ``RouteScope/universe`` for an ordinary address, ``RouteScope/link`` for a link-local one, ``RouteScope/host`` for loopback.
    package var scope: RouteScope
    /// The label (IPv4 only), e.g. `eth0` or `eth0:1`.
    package var label: String?
    /// The broadcast address (IPv4 only), when one is set (`ip addr add … brd …`).
    package var broadcast: IPv4Address?
    /// The flags a re-added address must carry to be the same (``restorableFlags`` of `IFA_F_*`:
    /// `nodad`, as Docker gives IPv6 addresses, `noprefixroute`, `mngtmpaddr`, `home`); 0 for none.
    package var flags: UInt32 = 0

    /// `IFA_F_NODAD | IFA_F_HOMEADDRESS | IFA_F_MANAGETEMPADDR | IFA_F_NOPREFIXROUTE`: the flags
    /// `ip addr add` sets and the kernel keeps (not its own states: permanent, tentative, …).
    package static let restorableFlags: UInt32 = 0x02 | 0x10 | 0x100 | 0x200

    package init(interfaceIndex: Int32, family: AddressFamily, address: IPAddress, prefixLength: Int, scope: RouteScope = .universe,
                label: String? = nil, broadcast: IPv4Address? = nil, flags: UInt32 = 0) {
        self.flags = flags & Self.restorableFlags
        self.interfaceIndex = interfaceIndex
        self.family = family
        self.address = address
        self.prefixLength = prefixLength
        self.scope = scope
        self.label = label
        self.broadcast = broadcast
    }

    /// The IPv4 address with its prefix, or nil for IPv6.
    package var ipv4: IPv4Interface? {
        guard family == .inet, let address = address.ipv4 else { return nil }
        return IPv4Interface(address: address, prefixLength: prefixLength)
    }

    /// `ADDR/PREFIX`.
    package var cidr: String { "\(address)/\(prefixLength)" }

    /// The IPv6 address with its prefix, or nil for IPv4.
    package var ipv6: IPv6Interface? {
        guard family == .inet6, let address = address.ipv6 else { return nil }
        return IPv6Interface(address: address, prefixLength: prefixLength)
    }

    /// Where the kernel lists a newly added IPv6 address among `addresses` (a dump's order): a link's
    /// IPv6 addresses are kept by scope, global before link-local, the newest first within a scope.
    /// nil for IPv4, whose order has its own rule (primaries, then secondaries).
    package static func ipv6Position(of record: AddressRecord, in addresses: [AddressRecord]) -> Int? {
        guard record.family == .inet6 else { return nil }
        let sameLink = addresses.indices.filter { addresses[$0].interfaceIndex == record.interfaceIndex && addresses[$0].family == .inet6 }
        if let before = sameLink.first(where: { addresses[$0].scope >= record.scope }) { return before }
        return sameLink.last.map { $0 + 1 } ?? addresses.count
    }
}

/// One route (`RTM_NEWROUTE`), single next hop.
package struct RouteRecord: Hashable, Sendable, Codable {
    package var family: AddressFamily
    /// Destination address; `0.0.0.0` / `::` (``IPAddress/anyIPv4``, ``IPAddress/anyIPv6``) with prefix 0 for a default route.
    package var destination: IPAddress
    package var prefixLength: Int
    /// Next-hop gateway, nil for an on-link (direct) route.
    package var gateway: IPAddress?
    /// Outgoing interface.
    package var interfaceIndex: Int32?
    /// Routing table, usually ``RouteTable/main``.
    package var table: RouteTable
    /// Who made it: ``RouteProtocol/kernel`` for an address's connected route.
    package var routeProtocol: RouteProtocol
    /// ``RouteScope/link`` for a route straight onto the link, ``RouteScope/universe`` through a gateway.
    package var scope: RouteScope
    /// ``RouteType/unicast`` for an ordinary route.
    package var type: RouteType
    /// Metric.
    package var priority: UInt32
    /// Preferred source address.
    package var preferredSource: IPAddress?

    package init(family: AddressFamily, destination: IPAddress, prefixLength: Int, gateway: IPAddress? = nil,
                interfaceIndex: Int32? = nil, table: RouteTable = .main, routeProtocol: RouteProtocol = .static,
                scope: RouteScope = .universe, type: RouteType = .unicast, priority: UInt32 = 0, preferredSource: IPAddress? = nil) {
        self.family = family
        self.destination = destination
        self.prefixLength = prefixLength
        self.gateway = gateway
        self.interfaceIndex = interfaceIndex
        self.table = table
        self.routeProtocol = routeProtocol
        self.scope = scope
        self.type = type
        self.priority = priority
        self.preferredSource = preferredSource
    }

    /// Destination 0/0.
    package var isDefault: Bool { prefixLength == 0 }

    /// The IPv4 destination network, or nil for IPv6.
    package var ipv4Destination: IPv4Interface? {
        guard family == .inet, let address = destination.ipv4 else { return nil }
        return IPv4Interface(address: address, prefixLength: prefixLength)
    }

    /// The IPv4 gateway, or nil.
    package var ipv4Gateway: IPv4Address? { gateway?.ipv4 }
}

/// Everything the kernel reports about one network namespace at one moment.
package struct NetworkSnapshot: Hashable, Sendable, Codable {
    package var links: [LinkRecord]
    package var addresses: [AddressRecord]
    package var routes: [RouteRecord]

    package init(links: [LinkRecord], addresses: [AddressRecord], routes: [RouteRecord]) {
        self.links = links
        self.addresses = addresses
        self.routes = routes
    }
}
