import CNetlink
import NetworkTypes
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A route-netlink socket through libnl-3: the only place kvm-launch talks to the kernel's
/// network configuration.
///
/// The socket belongs to the network namespace it was opened in (see ``NetworkNamespace``) and
/// keeps talking to that namespace from any thread. It is not thread-safe: use one from one task.
package final class NetlinkSocket: NetlinkOperations {
    let handle: OpaquePointer
    /// Where libnl's error callback leaves the kernel's errno of the last refused request.
    private let lastErrno: UnsafeMutablePointer<Int32>

    /// Opens and connects a `NETLINK_ROUTE` socket in the calling thread's network namespace.
    package init() throws(NetlinkError) {
        guard let socket = nl_socket_alloc() else {
            throw NetlinkError(operation: "allocate a netlink socket", reason: "out of memory")
        }
        let result = nl_connect(socket, NETLINK_ROUTE)
        if result < 0 {
            nl_socket_free(socket)
            throw NetlinkError(operation: "connect to route netlink", code: result)
        }
        // One read per message: libnl's default peeks at every message first to size its buffer (two
        // recvmsg calls each); a buffer as large as the kernel's largest dump part (32 KiB) needs no peek.
        nl_socket_disable_msg_peek(socket)
        _ = nl_socket_set_msg_buf_size(socket, 64 * 1024)
        handle = socket
        lastErrno = .allocate(capacity: 1)
        lastErrno.initialize(to: 0)
        _ = cnetlink_keep_errno(socket, lastErrno)
    }

    deinit {
        nl_socket_free(handle)
        lastErrno.deallocate()
    }

    /// Throws for a negative libnl result, with the errno the kernel answered.
    private func check(_ result: Int32, _ operation: @autoclosure () -> String) throws(NetlinkError) {
        let code = lastErrno.pointee
        lastErrno.pointee = 0
        if result < 0 { throw NetlinkError(operation: operation(), code: result, errno: code != 0 ? Errno(rawValue: code) : nil) }
    }

    // MARK: - Reading

    /// Every link, by ascending index.
    package func links() throws(NetlinkError) -> [LinkRecord] {
        var cache: OpaquePointer?
        try check(rtnl_link_alloc_cache(handle, AF_UNSPEC, &cache), "list links")
        defer { nl_cache_free(cache) }
        var result: [LinkRecord] = []
        var object = nl_cache_get_first(cache)
        while let link = object {
            result.append(Self.record(link: link))
            object = nl_cache_get_next(link)
        }
        return result.sorted { $0.index < $1.index }
    }

    /// One link by name, or nil when there is none.
    package func link(named name: String) throws(NetlinkError) -> LinkRecord? {
        var link: OpaquePointer?
        let result = rtnl_link_get_kernel(handle, 0, name, &link)
        if result == -NLE_OBJ_NOTFOUND || result == -NLE_NODEV { lastErrno.pointee = 0; return nil }
        try check(result, "look up link \(name)")
        defer { rtnl_link_put(link) }
        return link.map(Self.record(link:))
    }

    /// One link by index, or nil when there is none.
    package func link(index: Int32) throws(NetlinkError) -> LinkRecord? {
        var link: OpaquePointer?
        let result = rtnl_link_get_kernel(handle, index, nil, &link)
        if result == -NLE_OBJ_NOTFOUND || result == -NLE_NODEV { lastErrno.pointee = 0; return nil }
        try check(result, "look up link #\(index)")
        defer { rtnl_link_put(link) }
        return link.map(Self.record(link:))
    }

    /// Every IPv4 and IPv6 address.
    package func addresses() throws(NetlinkError) -> [AddressRecord] {
        var cache: OpaquePointer?
        try check(rtnl_addr_alloc_cache(handle, &cache), "list addresses")
        defer { nl_cache_free(cache) }
        var result: [AddressRecord] = []
        var object = nl_cache_get_first(cache)
        while let address = object {
            object = nl_cache_get_next(address)
            let family = rtnl_addr_get_family(address)
            guard family == AF_INET || family == AF_INET6, let local = rtnl_addr_get_local(address) else { continue }
            let label = rtnl_addr_get_label(address).map { String(cString: $0) }
            result.append(AddressRecord(
                interfaceIndex: rtnl_addr_get_ifindex(address),
                family: family == AF_INET ? .inet : .inet6,
                address: try Self.ipAddress(local, family: family),
                prefixLength: Int(rtnl_addr_get_prefixlen(address)),
                scope: RouteScope(rawValue: UInt8(truncatingIfNeeded: rtnl_addr_get_scope(address))),
                label: label,
                broadcast: family == AF_INET ? try Self.ipAddress(ifAny: rtnl_addr_get_broadcast(address), family: family)?.ipv4 : nil,
                flags: UInt32(rtnl_addr_get_flags(address))))
        }
        return result
    }

    /// Every IPv4 and IPv6 route of every table.
    package func routes() throws(NetlinkError) -> [RouteRecord] {
        var cache: OpaquePointer?
        try check(rtnl_route_alloc_cache(handle, AF_UNSPEC, 0, &cache), "list routes")
        defer { nl_cache_free(cache) }
        var result: [RouteRecord] = []
        var object = nl_cache_get_first(cache)
        while let route = object {
            object = nl_cache_get_next(route)
            let family = rtnl_route_get_family(route)
            guard family == AF_INET || family == AF_INET6 else { continue }
            let dst = rtnl_route_get_dst(route)
            var gateway: IPAddress?
            var interfaceIndex: Int32?
            if rtnl_route_get_nnexthops(route) > 0, let hop = rtnl_route_nexthop_n(route, 0) {
                gateway = try Self.ipAddress(ifAny: rtnl_route_nh_get_gateway(hop), family: Int32(family))
                let index = rtnl_route_nh_get_ifindex(hop)
                interfaceIndex = index > 0 ? index : nil
            }
            result.append(RouteRecord(
                family: family == AF_INET ? .inet : .inet6,
                destination: try Self.ipAddress(ifAny: dst, family: Int32(family)) ?? (family == AF_INET ? .anyIPv4 : .anyIPv6),
                prefixLength: dst.map { Int(nl_addr_get_prefixlen($0)) } ?? 0,
                gateway: gateway,
                interfaceIndex: interfaceIndex,
                table: RouteTable(rawValue: rtnl_route_get_table(route)),
                routeProtocol: RouteProtocol(rawValue: rtnl_route_get_protocol(route)),
                scope: RouteScope(rawValue: rtnl_route_get_scope(route)),
                type: RouteType(rawValue: rtnl_route_get_type(route)),
                priority: rtnl_route_get_priority(route),
                preferredSource: try Self.ipAddress(ifAny: rtnl_route_get_pref_src(route), family: Int32(family))))
        }
        return result
    }

    // MARK: - Changing links

    /// Creates a macvtap (`kind == .macvtap`) or macvlan on `parent` in bridge mode; returns its index
    /// when the kernel echoes the new link (6.2 and later), nil otherwise.
    @discardableResult
    package func addMacvlan(kind: MacvlanKind, name: String, parentIndex: Int32, mac: MACAddress?, up: Bool, group: UInt32) throws(NetlinkError) -> Int32? {
        let link: OpaquePointer? = kind == .macvtap ? rtnl_link_macvtap_alloc() : rtnl_link_macvlan_alloc()
        guard let link else { throw NetlinkError(operation: "allocate \(kind.rawValue) \(name)", reason: "out of memory") }
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, name)
        rtnl_link_set_link(link, parentIndex)
        if kind == .macvtap {
            try check(rtnl_link_macvtap_set_mode(link, UInt32(MACVLAN_MODE_BRIDGE.rawValue)), "set bridge mode on \(name)")
        } else {
            try check(rtnl_link_macvlan_set_mode(link, UInt32(MACVLAN_MODE_BRIDGE.rawValue)), "set bridge mode on \(name)")
        }
        if let mac { try Self.withNLAddress(mac: mac) { rtnl_link_set_addr(link, $0) } }
        // A macvtap passes up only the multicast groups on its own list, which QEMU never fills in
        // with the guest's: IPv6 Neighbor Solicitations for the VM's addresses (to their
        // solicited-node groups) would never reach it. All multicast goes to the VM, as on a NIC.
        let flags = (up ? UInt32(IFF_UP.rawValue) : 0) | (kind == .macvtap ? UInt32(IFF_ALLMULTI.rawValue) : 0)
        if flags != 0 { rtnl_link_set_flags(link, flags) }
        if group != 0 { rtnl_link_set_group(link, group) }
        let index = try addEchoed(link, "add \(kind.rawValue) \(name) on link #\(parentIndex)")
        if kind == .macvtap { stopIPv6AddressGeneration(name: name) }
        return index
    }

    /// `RTM_NEWLINK` with `NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO`: the new link's index from the echo,
    /// or nil when the kernel sends none.
    private func addEchoed(_ link: OpaquePointer, _ operation: @autoclosure () -> String) throws(NetlinkError) -> Int32? {
        var index: Int32 = 0
        try check(cnetlink_add_link_echo(handle, link, NLM_F_CREATE | NLM_F_EXCL, &index), operation())
        return index > 0 ? index : nil
    }

    /// A macvtap carries the guest's MAC, so the kernel would give its container side the guest's own
    /// EUI-64 link-local address and send Router Solicitations and MLD reports from it in the VM's name.
    /// It is the VM's port, not an interface of the container: no IPv6 address is generated on it. The
    /// kernel takes the mode only on an existing link (not in the creating request), and before it is
    /// up. Best effort: a kernel without IPv6 refuses it, and then there is nothing to stop.
    private func stopIPv6AddressGeneration(name: String) {
        guard let original = rtnl_link_alloc(), let request = rtnl_link_alloc() else { return }
        defer { rtnl_link_put(original); rtnl_link_put(request) }
        rtnl_link_set_name(original, name)
        rtnl_link_set_name(request, name)
        guard rtnl_link_inet6_set_addr_gen_mode(request, UInt8(IN6_ADDR_GEN_MODE_NONE.rawValue)) == 0 else { return }
        _ = rtnl_link_change(handle, original, request, 0)
    }

    /// Creates a Linux bridge; returns its index when the kernel echoes the new link, nil otherwise.
    @discardableResult
    package func addBridge(name: String, mac: MACAddress?, group: UInt32) throws(NetlinkError) -> Int32? {
        guard let link = rtnl_link_alloc() else { throw NetlinkError(operation: "allocate bridge \(name)", reason: "out of memory") }
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, name)
        try check(rtnl_link_set_type(link, "bridge"), "set type bridge on \(name)")
        if let mac { try Self.withNLAddress(mac: mac) { rtnl_link_set_addr(link, $0) } }
        if group != 0 { rtnl_link_set_group(link, group) }
        return try addEchoed(link, "add bridge \(name)")
    }

    /// Deletes a link.
    package func deleteLink(index: Int32) throws(NetlinkError) {
        guard let link = rtnl_link_alloc() else { throw NetlinkError(operation: "allocate link", reason: "out of memory") }
        defer { rtnl_link_put(link) }
        rtnl_link_set_ifindex(link, index)
        try check(rtnl_link_delete(handle, link), "delete link #\(index)")
    }

    /// Deletes every link of link group `group` with one `RTM_DELLINK` (the kernel unregisters them
    /// together: one RCU grace period instead of one per link).
    package func deleteLinks(group: UInt32) throws(NetlinkError) {
        guard group != 0 else { throw NetlinkError(operation: "delete link group 0", reason: "the default group holds every ordinary link") }
        try check(cnetlink_delete_link_group(handle, group), "delete link group \(group)")
    }

    /// Changes attributes of an existing link in one `RTM_NEWLINK` request.
    package func changeLink(index: Int32, _ change: LinkChange) throws(NetlinkError) {
        guard !change.isEmpty else { return }
        guard let original = rtnl_link_alloc(), let request = rtnl_link_alloc() else {
            throw NetlinkError(operation: "allocate link", reason: "out of memory")
        }
        defer { rtnl_link_put(original); rtnl_link_put(request) }
        rtnl_link_set_ifindex(original, index)
        rtnl_link_set_ifindex(request, index)
        if let mac = change.mac { try Self.withNLAddress(mac: mac) { rtnl_link_set_addr(request, $0) } }
        if let up = change.up {
            if up { rtnl_link_set_flags(request, UInt32(IFF_UP.rawValue)) } else { rtnl_link_unset_flags(request, UInt32(IFF_UP.rawValue)) }
        }
        if let mtu = change.mtu { rtnl_link_set_mtu(request, UInt32(mtu)) }
        if let alias = change.alias { rtnl_link_set_ifalias(request, alias) }
        if let masterIndex = change.masterIndex { rtnl_link_set_master(request, masterIndex) }
        if let name = change.name { rtnl_link_set_name(request, name) }
        if let group = change.group { rtnl_link_set_group(request, group) }
        try check(rtnl_link_change(handle, original, request, 0), "set \(change) on link #\(index)")
    }

    // MARK: - Addresses and routes

    /// Adds an address to a link.
    package func addAddress(_ address: AddressRecord) throws(NetlinkError) {
        try withAddressObject(address) { object throws(NetlinkError) in
            try check(rtnl_addr_add(handle, object, NLM_F_CREATE | NLM_F_EXCL), "add address \(address.cidr) to link #\(address.interfaceIndex)")
        }
    }

    /// Removes an address from a link.
    package func deleteAddress(_ address: AddressRecord) throws(NetlinkError) {
        try withAddressObject(address) { object throws(NetlinkError) in
            try check(rtnl_addr_delete(handle, object, 0), "delete address \(address.cidr) from link #\(address.interfaceIndex)")
        }
    }

    /// Adds a route.
    package func addRoute(_ route: RouteRecord) throws(NetlinkError) {
        try withRouteObject(route) { object throws(NetlinkError) in
            try check(rtnl_route_add(handle, object, NLM_F_CREATE | NLM_F_EXCL), "add route \(Self.describe(route))")
        }
    }

    /// Deletes a route.
    package func deleteRoute(_ route: RouteRecord) throws(NetlinkError) {
        try withRouteObject(route) { object throws(NetlinkError) in
            try check(rtnl_route_delete(handle, object, 0), "delete route \(Self.describe(route))")
        }
    }

    // MARK: - Helpers

    static func describe(_ route: RouteRecord) -> String {
        var text = route.isDefault ? "default" : "\(route.destination)/\(route.prefixLength)"
        if let gateway = route.gateway { text += " via \(gateway)" }
        if let index = route.interfaceIndex { text += " dev #\(index)" }
        return text
    }

    private func withAddressObject(_ address: AddressRecord, _ body: (OpaquePointer) throws(NetlinkError) -> Void) throws(NetlinkError) {
        guard let object = rtnl_addr_alloc() else { throw NetlinkError(operation: "allocate address", reason: "out of memory") }
        defer { rtnl_addr_put(object) }
        rtnl_addr_set_ifindex(object, address.interfaceIndex)
        let family = address.family == .inet ? AF_INET : AF_INET6
        rtnl_addr_set_family(object, family)
        let local = try Self.nlAddress(address.address)
        defer { nl_addr_put(local) }
        nl_addr_set_prefixlen(local, Int32(address.prefixLength))
        try check(rtnl_addr_set_local(object, local), "set address \(address.cidr)")
        rtnl_addr_set_prefixlen(object, Int32(address.prefixLength))
        if address.family == .inet, let text = address.broadcast {
            let broadcast = try Self.nlAddress(.v4(text))
            defer { nl_addr_put(broadcast) }
            try check(rtnl_addr_set_broadcast(object, broadcast), "set broadcast for \(address.cidr)")
        }
        if let label = address.label, address.family == .inet { _ = rtnl_addr_set_label(object, label) }
        if address.flags != 0 { rtnl_addr_set_flags(object, address.flags) }
        try body(object)
    }

    private func withRouteObject(_ route: RouteRecord, _ body: (OpaquePointer) throws(NetlinkError) -> Void) throws(NetlinkError) {
        guard let object = rtnl_route_alloc() else { throw NetlinkError(operation: "allocate route", reason: "out of memory") }
        defer { rtnl_route_put(object) }
        let family = route.family == .inet ? AF_INET : AF_INET6
        _ = rtnl_route_set_family(object, UInt8(family))
        let dst = try Self.nlAddress(route.destination)
        defer { nl_addr_put(dst) }
        nl_addr_set_prefixlen(dst, Int32(route.prefixLength))
        try check(rtnl_route_set_dst(object, dst), "set route destination")
        rtnl_route_set_table(object, route.table.rawValue)
        rtnl_route_set_protocol(object, route.routeProtocol.rawValue)
        rtnl_route_set_scope(object, route.scope.rawValue)
        _ = rtnl_route_set_type(object, route.type.rawValue)
        rtnl_route_set_priority(object, route.priority)
        if let source = route.preferredSource {
            let src = try Self.nlAddress(source)
            defer { nl_addr_put(src) }
            _ = rtnl_route_set_pref_src(object, src)
        }
        guard let hop = rtnl_route_nh_alloc() else { throw NetlinkError(operation: "allocate next hop", reason: "out of memory") }
        if let index = route.interfaceIndex { rtnl_route_nh_set_ifindex(hop, index) }
        if let gateway = route.gateway {
            let gw = try Self.nlAddress(gateway)
            defer { nl_addr_put(gw) }
            rtnl_route_nh_set_gateway(hop, gw)
        }
        rtnl_route_add_nexthop(object, hop)  // the route owns the hop from here on
        try body(object)
    }

    /// A new libnl address (the caller puts it) holding `address`.
    static func nlAddress(_ address: IPAddress) throws(NetlinkError) -> OpaquePointer {
        var octets = address.octets
        guard let result = nl_addr_build(address.ipv4 != nil ? AF_INET : AF_INET6, &octets, octets.count) else {
            throw NetlinkError(operation: "build address \(address)", reason: "out of memory")
        }
        return result
    }

    /// The IP address a libnl address of `family` holds; an empty one (a default route's destination) is
    /// the family's any-address.
    static func ipAddress(_ address: OpaquePointer, family: Int32) throws(NetlinkError) -> IPAddress {
        let length = Int(nl_addr_get_len(address))
        if length == 0 { return family == AF_INET ? .anyIPv4 : .anyIPv6 }
        guard let raw = nl_addr_get_binary_addr(address),
              let parsed = IPAddress(octets: UnsafeRawBufferPointer(start: raw, count: length)) else {
            throw NetlinkError(operation: "read an address", reason: "the kernel reported \(length) bytes for family \(family)")
        }
        return parsed
    }

    /// ``ipAddress(_:family:)`` of an address that may be absent (nil then).
    static func ipAddress(ifAny address: OpaquePointer?, family: Int32) throws(NetlinkError) -> IPAddress? {
        guard let address else { return nil }
        return try ipAddress(address, family: family)
    }

    static func withNLAddress(mac: MACAddress, _ body: (OpaquePointer) -> Void) throws(NetlinkError) {
        var octets = mac.octets
        guard let address = nl_addr_build(AF_LLC, &octets, 6) else {
            throw NetlinkError(operation: "build MAC address \(mac)", reason: "out of memory")
        }
        defer { nl_addr_put(address) }
        body(address)
    }

    static func record(link: OpaquePointer) -> LinkRecord {
        let flags = rtnl_link_get_flags(link)
        let hardwareType = rtnl_link_get_arptype(link)
        let hardware = HardwareType(rawValue: UInt32(hardwareType))
        var kind = LinkKind(rawValue: rtnl_link_get_type(link).map { String(cString: $0) } ?? "")
        if kind.rawValue.isEmpty {
            kind = hardware == .loopback ? .loopback : (hardware == .ethernet ? .ethernet : .other)
        }
        var mac: MACAddress?
        if let address = rtnl_link_get_addr(link), nl_addr_get_len(address) == 6,
           let raw = nl_addr_get_binary_addr(address) {
            mac = MACAddress(Array(UnsafeRawBufferPointer(start: raw, count: 6)))
        }
        var netnsid: Int32 = -1
        let peerElsewhere = rtnl_link_get_link_netnsid(link, &netnsid) == 0 && netnsid >= 0
        let lower = rtnl_link_get_link(link)
        let master = rtnl_link_get_master(link)
        let alias = rtnl_link_get_ifalias(link).map { String(cString: $0) }
        var stateBuffer = [CChar](repeating: 0, count: 32)
        rtnl_link_operstate2str(rtnl_link_get_operstate(link), &stateBuffer, stateBuffer.count)
        let index = rtnl_link_get_ifindex(link)
        return LinkRecord(
            index: index,
            name: String(cString: rtnl_link_get_name(link)),
            kind: kind,
            mac: mac,
            mtu: Int(rtnl_link_get_mtu(link)),
            isUp: flags & UInt32(IFF_UP.rawValue) != 0,
            hasCarrier: flags & UInt32(IFF_LOWER_UP.rawValue) != 0,
            operationalState: string(fromNulTerminated: stateBuffer),
            masterIndex: master > 0 ? master : nil,
            lowerIndex: (lower > 0 && lower != index && !peerElsewhere) ? lower : nil,
            alias: alias.flatMap { $0.isEmpty ? nil : $0 },
            hardwareType: hardware,
            group: rtnl_link_get_group(link))
    }
}

/// The two flavours of MAC-VLAN link kvm-launch creates.
package enum MacvlanKind: String, Sendable {
    /// A macvlan with a character device (`/dev/tapN`) a VM reads and writes frames through.
    case macvtap
    /// A plain macvlan: a network interface for the container side.
    case macvlan
}

func string(fromNulTerminated buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
