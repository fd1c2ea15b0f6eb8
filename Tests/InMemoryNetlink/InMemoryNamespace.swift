import Netlink
import NetworkTypes
import SystemPackage

/// A network namespace in memory, behind the same ``NetlinkOperations`` and
/// ``TapDeviceOperations`` as the kernel, for unit tests of the attacher without root.
///
/// It refuses what the kernel refuses and does what the kernel does on its own, as far as
/// kvm-launch's operations reach (the root test `InMemoryFidelityTests` runs the same operations
/// against a real namespace and compares):
/// - links: unique names of at most 15 bytes; a macvlan/macvtap needs its parent, which must not be
///   a bridge port, and may not take the parent's MAC or a sibling's (`EADDRINUSE`); a link with
///   macvlans on it cannot become a bridge port (`EBUSY`); only a bridge can be a master; deleting
///   a link deletes its macvlans, addresses and routes and releases its ports; an up link cannot be
///   renamed; an alias is at most 255 bytes, empty clears it;
/// - addresses: `EEXIST` for the same address and prefix; an IPv4 address inside the subnet of
///   another one on the link is secondary, and deleting a primary deletes its secondaries
///   (`promote_secondaries` off); a primary on an up link brings its connected route
///   (`proto kernel scope link src ADDR`, none for a /32); deleting the last IPv4 address of a link
///   removes every IPv4 route through it; a new primary goes after the link's other primaries;
/// - routes: the link must exist and be up (`ENETDOWN`); a route through an IPv4 gateway needs a
///   link-scope route through the same link covering the gateway (`ENETUNREACH`), so Calico's
///   `default via 169.254.1.1` needs `169.254.1.1 dev eth0 scope link` first; `EEXIST` for the same
///   table, destination and metric; taking a link down removes its IPv4 routes, bringing it up
///   restores its connected routes;
/// - devices: a TAP is a link while its descriptor is open and goes with the descriptor; a macvtap
///   device node needs the macvtap; nodes stay when the process dies, descriptors do not.
///
/// Every call is logged in ``calls``; ``failure`` can make any call fail with an errno before it
/// changes anything.
package final class InMemoryNamespace: NetlinkOperations, TapDeviceOperations {
    /// An open descriptor this namespace handed out.
    package enum OpenDevice: Sendable, Equatable {
        /// A TAP; its link (by index) lives while the descriptor is open, nil once the link was deleted.
        case tap(linkIndex: Int32?)
        case macvtap(nodePath: String)
    }

    /// Everything the namespace holds; a value, so a test can copy it (e.g. at a simulated death).
    package struct State: Sendable, Equatable {
        package var links: [LinkRecord] = []
        /// In kernel order: per link, primaries before secondaries.
        package var addresses: [AddressRecord] = []
        package var routes: [RouteRecord] = []
        /// Device nodes that exist (a macvtap's private node).
        package var nodes: Set<String> = []
        package var descriptors: [Int32: OpenDevice] = [:]
        var nextIndex: Int32 = 100
        var nextDescriptor: Int32 = 1000
        var macCounter: UInt32 = 0
    }

    /// A call, as logged and as offered to ``failure``.
    package enum Call: Sendable, Equatable, CustomStringConvertible {
        case links, addresses, routes
        case linkNamed(String), linkIndex(Int32)
        case addMacvlan(name: String, parent: Int32), addBridge(name: String), deleteLink(Int32), deleteLinkGroup(UInt32)
        case changeLink(Int32, LinkChange)
        case addAddress(AddressRecord), deleteAddress(AddressRecord)
        case addRoute(RouteRecord), deleteRoute(RouteRecord)
        case openTap(String), openMacvtap(String), openVhostNet, close(Int32), removeStaleNodes(String)

        /// Whether the call can change the namespace.
        package var changes: Bool {
            switch self {
            case .links, .addresses, .routes, .linkNamed, .linkIndex, .openVhostNet: false
            default: true
            }
        }

        package var description: String {
            switch self {
            case .links: "links"
            case .addresses: "addresses"
            case .routes: "routes"
            case .linkNamed(let name): "link \(name)"
            case .linkIndex(let index): "link #\(index)"
            case .addMacvlan(let name, let parent): "add macvlan \(name) on #\(parent)"
            case .addBridge(let name): "add bridge \(name)"
            case .deleteLink(let index): "delete link #\(index)"
            case .deleteLinkGroup(let group): "delete link group \(group)"
            case .changeLink(let index, let change): "change link #\(index): \(change)"
            case .addAddress(let address): "add address \(address.cidr) to #\(address.interfaceIndex)"
            case .deleteAddress(let address): "delete address \(address.cidr) from #\(address.interfaceIndex)"
            case .addRoute(let route): "add route \(route.destination)/\(route.prefixLength) via \(route.gateway?.description ?? "-") dev #\(route.interfaceIndex ?? 0)"
            case .deleteRoute(let route): "delete route \(route.destination)/\(route.prefixLength)"
            case .openTap(let name): "open tap \(name)"
            case .openMacvtap(let name): "open macvtap \(name)"
            case .openVhostNet: "open vhost-net"
            case .close(let descriptor): "close \(descriptor)"
            case .removeStaleNodes(let directory): "remove stale nodes in \(directory)"
            }
        }
    }

    package var state: State
    /// Every call made, in order (1-based numbers in ``failure`` count this list).
    package private(set) var calls: [Call] = []
    /// Asked before each call is carried out, with its number and the call: an errno makes it fail
    /// without changing anything.
    package var failure: ((Int, Call) -> Errno?)?
    /// Whether adding a link answers with its index, as a kernel from 6.2 on does for `NLM_F_ECHO`
    /// (false: as an older one, so the caller looks the new link up).
    package var echoesNewLinks = true

    package init(links: [LinkRecord] = [], addresses: [AddressRecord] = [], routes: [RouteRecord] = []) {
        state = State()
        state.links = links.sorted { $0.index < $1.index }
        state.addresses = addresses
        state.routes = routes
        state.nextIndex = max(100, (links.map(\.index).max() ?? 0) + 1)
    }

    /// A copy with the same state and no call log or failures.
    package func copy() -> InMemoryNamespace {
        let copy = InMemoryNamespace()
        copy.state = state
        copy.echoesNewLinks = echoesNewLinks
        return copy
    }

    /// What the kernel does when the process holding descriptors dies: every descriptor closes
    /// (TAPs vanish with them); device nodes stay.
    package func processDied() {
        for descriptor in state.descriptors.keys.sorted() { try? closeDescriptor(descriptor) }
    }

    /// Links, addresses and routes in a canonical order, for comparing two namespaces.
    package var network: NetworkSnapshot {
        NetworkSnapshot(
            links: state.links.sorted { $0.index < $1.index },
            addresses: state.addresses.sorted { ($0.interfaceIndex, $0.family.rawValue, $0.address, $0.prefixLength) < ($1.interfaceIndex, $1.family.rawValue, $1.address, $1.prefixLength) },
            routes: state.routes.sorted { Self.key($0) < Self.key($1) })
    }

    static func key(_ route: RouteRecord) -> String {
        "\(route.family.rawValue) \(route.table.rawValue) \(route.destination)/\(route.prefixLength) \(route.priority) \(route.gateway?.description ?? "") \(route.interfaceIndex ?? 0) \(route.scope.rawValue) \(route.routeProtocol.rawValue) \(route.preferredSource?.description ?? "")"
    }

    // MARK: - Call log and injection

    private func enter(_ call: Call) throws(NetlinkError) {
        calls.append(call)
        if let errno = failure?(calls.count, call) { throw NetlinkError(operation: "\(call) (injected)", errno: errno) }
    }

    private func enterDevice(_ call: Call) throws(TapDevices.Error) {
        calls.append(call)
        if let errno = failure?(calls.count, call) { throw TapDevices.Error(operation: "\(call) (injected)", errno: errno) }
    }

    private func refuse(_ call: Call, _ errno: Errno) -> NetlinkError {
        NetlinkError(operation: call.description, errno: errno)
    }

    // MARK: - Reading

    package func links() throws(NetlinkError) -> [LinkRecord] {
        try enter(.links)
        return state.links.sorted { $0.index < $1.index }
    }

    package func addresses() throws(NetlinkError) -> [AddressRecord] {
        try enter(.addresses)
        return state.addresses
    }

    package func routes() throws(NetlinkError) -> [RouteRecord] {
        try enter(.routes)
        return state.routes.sorted { Self.key($0) < Self.key($1) }
    }

    package func link(named name: String) throws(NetlinkError) -> LinkRecord? {
        try enter(.linkNamed(name))
        return state.links.first { $0.name == name }
    }

    package func link(index: Int32) throws(NetlinkError) -> LinkRecord? {
        try enter(.linkIndex(index))
        return state.links.first { $0.index == index }
    }

    // MARK: - Links

    @discardableResult
    package func addMacvlan(kind: MacvlanKind, name: String, parentIndex: Int32, mac: MACAddress?, up: Bool, group: UInt32) throws(NetlinkError) -> Int32? {
        let call = Call.addMacvlan(name: name, parent: parentIndex)
        try enter(call)
        try checkNewName(name, call)
        guard let parent = linkRecord(parentIndex) else { throw refuse(call, .operationNotSupportedByDevice) }
        if parent.masterIndex != nil { throw refuse(call, .resourceBusy) }
        let address = mac ?? nextMAC()
        if address.isMulticast || address.isZero { throw refuse(call, .addressNotAvailable) }
        if up && macvlanAddressBusy(address, lower: parentIndex, except: nil) { throw refuse(call, .addressInUse) }
        let index = state.nextIndex
        state.nextIndex += 1
        state.links.append(LinkRecord(index: index, name: name, kind: kind == .macvtap ? .macvtap : .macvlan, mac: address,
                                      mtu: parent.mtu, isUp: up, hasCarrier: up && parent.isUp, operationalState: up ? "up" : "down",
                                      lowerIndex: parentIndex, group: group))
        return echoesNewLinks ? index : nil
    }

    @discardableResult
    package func addBridge(name: String, mac: MACAddress?, group: UInt32) throws(NetlinkError) -> Int32? {
        let call = Call.addBridge(name: name)
        try enter(call)
        try checkNewName(name, call)
        let index = state.nextIndex
        state.nextIndex += 1
        state.links.append(LinkRecord(index: index, name: name, kind: .bridge, mac: mac ?? nextMAC(), mtu: 1500,
                                      isUp: false, hasCarrier: false, operationalState: "down", group: group))
        return echoesNewLinks ? index : nil
    }

    package func deleteLinks(group: UInt32) throws(NetlinkError) {
        let call = Call.deleteLinkGroup(group)
        try enter(call)
        if group == 0 { throw refuse(call, .invalidArgument) }
        if !state.links.contains(where: { $0.group == group }) { throw refuse(call, .operationNotSupportedByDevice) }
        for link in state.links where link.group == group { removeLink(link.index) }
    }

    package func deleteLink(index: Int32) throws(NetlinkError) {
        let call = Call.deleteLink(index)
        try enter(call)
        guard let link = linkRecord(index) else { throw refuse(call, .operationNotSupportedByDevice) }
        if link.kind == .loopback { throw refuse(call, .notSupportedOnSocket) }
        removeLink(index)
    }

    package func changeLink(index: Int32, _ change: LinkChange) throws(NetlinkError) {
        let call = Call.changeLink(index, change)
        try enter(call)
        guard let position = state.links.firstIndex(where: { $0.index == index }) else { throw refuse(call, .operationNotSupportedByDevice) }
        let link = state.links[position]
        // Check everything first, then change (the kernel may apply part of a refused request;
        // kvm-launch never sends one that it refuses part of).
        if let name = change.name, name != link.name {
            if link.isUp { throw refuse(call, .resourceBusy) }
            try checkNewName(name, call)
        }
        if let mtu = change.mtu, mtu < 68 || mtu > 65535 { throw refuse(call, .invalidArgument) }
        if let mac = change.mac {
            if mac.isMulticast || mac.isZero { throw refuse(call, .addressNotAvailable) }
            if isMacvlan(link), link.isUp, let lower = link.lowerIndex, macvlanAddressBusy(mac, lower: lower, except: index) {
                throw refuse(call, .addressInUse)
            }
        }
        if change.up == true, !link.isUp, isMacvlan(link), let lower = link.lowerIndex,
           macvlanAddressBusy(change.mac ?? link.mac, lower: lower, except: index) {
            throw refuse(call, .addressInUse)
        }
        if let alias = change.alias, alias.utf8.count > 255 { throw refuse(call, .invalidArgument) }
        if let master = change.masterIndex, master != 0 {
            guard let bridge = linkRecord(master) else { throw refuse(call, .operationNotSupportedByDevice) }
            if bridge.kind != .bridge { throw refuse(call, .notSupportedOnSocket) }
            if master == index { throw refuse(call, .tooManySymbolicLinkLevels) }
            if state.links.contains(where: { $0.lowerIndex == index && ($0.kind == .macvlan || $0.kind == .macvtap) }) { throw refuse(call, .resourceBusy) }
        }
        if let name = change.name { state.links[position].name = name }
        if let mtu = change.mtu { state.links[position].mtu = mtu }
        if let mac = change.mac { state.links[position].mac = mac }
        if let alias = change.alias { state.links[position].alias = alias.isEmpty ? nil : alias }
        if let master = change.masterIndex { state.links[position].masterIndex = master == 0 ? nil : master }
        if let group = change.group { state.links[position].group = group }
        if let up = change.up, up != link.isUp {
            state.links[position].isUp = up
            state.links[position].hasCarrier = up
            state.links[position].operationalState = up ? "up" : "down"
            if up { addConnectedRoutes(index) } else { state.routes.removeAll { $0.interfaceIndex == index && $0.family == .inet } }
        }
    }

    // MARK: - Addresses

    package func addAddress(_ address: AddressRecord) throws(NetlinkError) {
        let call = Call.addAddress(address)
        try enter(call)
        guard let link = linkRecord(address.interfaceIndex) else { throw refuse(call, .operationNotSupportedByDevice) }
        let own = state.addresses.filter { $0.interfaceIndex == address.interfaceIndex && $0.family == address.family }
        if own.contains(where: { $0.address == address.address && $0.prefixLength == address.prefixLength }) { throw refuse(call, .fileExists) }
        var record = address
        if record.label == nil && record.family == .inet { record.label = link.name }
        if isSecondary(record) {
            state.addresses.append(record)
            return
        }
        if let position = AddressRecord.ipv6Position(of: record, in: state.addresses) {
            state.addresses.insert(record, at: position)
            if link.isUp, let route = connectedRoute(record), !state.routes.contains(where: { Self.sameRoute($0, route) }) { state.routes.append(route) }
            return
        }
        // A new primary goes after the link's last primary of its family.
        let primaries = state.addresses.indices.filter {
            state.addresses[$0].interfaceIndex == address.interfaceIndex && state.addresses[$0].family == address.family && !isSecondary(state.addresses[$0])
        }
        let position = primaries.last.map { $0 + 1 } ?? state.addresses.count
        state.addresses.insert(record, at: position)
        // One connected route per prefix: IPv6 addresses in one prefix (two link-local ones) share it.
        if link.isUp, let route = connectedRoute(record), !state.routes.contains(where: { Self.sameRoute($0, route) }) { state.routes.append(route) }
    }

    package func deleteAddress(_ address: AddressRecord) throws(NetlinkError) {
        let call = Call.deleteAddress(address)
        try enter(call)
        guard let position = state.addresses.firstIndex(where: {
            $0.interfaceIndex == address.interfaceIndex && $0.family == address.family && $0.address == address.address && $0.prefixLength == address.prefixLength
        }) else { throw refuse(call, .addressNotAvailable) }
        let removed = state.addresses[position]
        let wasPrimary = !isSecondary(removed)
        state.addresses.remove(at: position)
        if let route = connectedRoute(removed), removed.family == .inet || !state.addresses.contains(where: {
            $0.interfaceIndex == removed.interfaceIndex && connectedRoute($0).map { Self.sameRoute($0, route) } == true
        }) {
            // The kernel keeps an IPv6 prefix route while another address in the prefix is left.
            state.routes.removeAll { Self.sameRoute($0, route) }
        }
        guard removed.family == .inet, let interface = removed.ipv4 else { return }
        if wasPrimary {
            // promote_secondaries is off: the secondaries of a deleted primary go with it.
            state.addresses.removeAll {
                $0.interfaceIndex == removed.interfaceIndex && $0.family == .inet && $0.prefixLength == interface.prefixLength
                    && $0.ipv4.map { interface.contains($0.address) } == true
            }
        }
        state.routes.removeAll { $0.family == .inet && $0.preferredSource == removed.address }
        if !state.addresses.contains(where: { $0.interfaceIndex == removed.interfaceIndex && $0.family == .inet }) {
            state.routes.removeAll { $0.interfaceIndex == removed.interfaceIndex && $0.family == .inet }
        }
    }

    // MARK: - Routes

    package func addRoute(_ route: RouteRecord) throws(NetlinkError) {
        let call = Call.addRoute(route)
        try enter(call)
        guard let index = route.interfaceIndex, let link = linkRecord(index) else { throw refuse(call, .operationNotSupportedByDevice) }
        if !link.isUp { throw refuse(call, .networkDown) }
        if route.family == .inet, let gateway = route.ipv4Gateway {
            let reachable = state.routes.contains { existing in
                existing.family == .inet && existing.interfaceIndex == index && existing.table == .main && existing.type == .unicast
                    && existing.scope > route.scope && existing.ipv4Destination.map { $0.contains(gateway) } == true
            }
            if !reachable { throw refuse(call, .networkUnreachable) }
        }
        if state.routes.contains(where: {
            $0.family == route.family && $0.table == route.table && $0.destination == route.destination
                && $0.prefixLength == route.prefixLength && $0.priority == route.priority
        }) { throw refuse(call, .fileExists) }
        state.routes.append(route)
    }

    package func deleteRoute(_ route: RouteRecord) throws(NetlinkError) {
        let call = Call.deleteRoute(route)
        try enter(call)
        guard let position = state.routes.firstIndex(where: {
            $0.family == route.family && $0.table == route.table && $0.destination == route.destination && $0.prefixLength == route.prefixLength
                && (route.gateway == nil || $0.gateway == route.gateway) && (route.interfaceIndex == nil || $0.interfaceIndex == route.interfaceIndex)
                && (route.priority == 0 || $0.priority == route.priority)
        }) else { throw refuse(call, .noSuchProcess) }
        state.routes.remove(at: position)
    }

    // MARK: - Devices

    package func openTap(named name: String, queues: Int) throws(TapDevices.Error) -> [FileDescriptor] {
        try enterDevice(.openTap(name))
        if name.isEmpty || name.utf8.count > 15 { throw TapDevices.Error(operation: "create tap \(name)", errno: .invalidArgument) }
        if state.links.contains(where: { $0.name == name }) { throw TapDevices.Error(operation: "create tap \(name)", errno: .resourceBusy) }
        let index = state.nextIndex
        state.nextIndex += 1
        state.links.append(LinkRecord(index: index, name: name, kind: .tun, mac: nextMAC(), mtu: 1500, isUp: false,
                                      hasCarrier: false, operationalState: "down"))
        // Every queue's descriptor holds the link; it goes when the last one closes.
        return (0..<max(queues, 1)).map { _ in newDescriptor(.tap(linkIndex: index)) }
    }

    package func openMacvtap(name: String, index: Int32, nodePath: String, queues: Int) throws(TapDevices.Error) -> [FileDescriptor] {
        try enterDevice(.openMacvtap(name))
        guard state.links.contains(where: { $0.index == index && $0.name == name && $0.kind == .macvtap }) else {
            throw TapDevices.Error(operation: "read /sys/class/net/\(name)/macvtap/tap\(index)/dev", errno: .noSuchFileOrDirectory)
        }
        state.nodes.insert(nodePath)
        return (0..<max(queues, 1)).map { _ in newDescriptor(.macvtap(nodePath: nodePath)) }
    }

    package func openVhostNet() -> FileDescriptor? {
        calls.append(.openVhostNet)
        return nil
    }

    package func close(_ descriptor: FileDescriptor, nodePath: String?) throws(TapDevices.Error) {
        try enterDevice(.close(descriptor.rawValue))
        guard state.descriptors[descriptor.rawValue] != nil else { throw TapDevices.Error(operation: "close \(descriptor.rawValue)", errno: .badFileDescriptor) }
        try? closeDescriptor(descriptor.rawValue)
        if let nodePath { state.nodes.remove(nodePath) }
    }

    package func closeAll(_ items: [DeviceToClose]) -> [TapDevices.Error?] {
        items.map { item -> TapDevices.Error? in
            do throws(TapDevices.Error) { try close(item.descriptor, nodePath: item.nodePath); return nil } catch { return error }
        }
    }

    /// The closes first (the real one starts them before `meanwhile`), then `meanwhile`.
    package func closeAll(_ items: [DeviceToClose], meanwhile: () -> Void) -> [TapDevices.Error?] {
        let results = closeAll(items)
        meanwhile()
        return results
    }

    package func removeStaleNodes(in directory: String, prefix: String) {
        calls.append(.removeStaleNodes(directory))
        state.nodes = state.nodes.filter { !$0.hasPrefix("\(directory)/\(prefix)") }
    }

    // MARK: - The kernel's own doings

    private func closeDescriptor(_ descriptor: Int32) throws {
        guard let device = state.descriptors.removeValue(forKey: descriptor) else { return }
        // A (multiqueue) tap goes when the last descriptor of one of its queues closes.
        if case .tap(let index?) = device, !state.descriptors.values.contains(.tap(linkIndex: index)) { removeLink(index) }
    }

    private func newDescriptor(_ device: OpenDevice) -> FileDescriptor {
        let number = state.nextDescriptor
        state.nextDescriptor += 1
        state.descriptors[number] = device
        return FileDescriptor(rawValue: number)
    }

    private func removeLink(_ index: Int32) {
        for upper in state.links where upper.lowerIndex == index && (upper.kind == .macvlan || upper.kind == .macvtap) {
            removeLink(upper.index)
        }
        state.links.removeAll { $0.index == index }
        state.addresses.removeAll { $0.interfaceIndex == index }
        state.routes.removeAll { $0.interfaceIndex == index }
        for position in state.links.indices where state.links[position].masterIndex == index {
            state.links[position].masterIndex = nil
        }
        for (descriptor, device) in state.descriptors where device == .tap(linkIndex: index) {
            state.descriptors[descriptor] = .tap(linkIndex: nil)
        }
    }

    private func linkRecord(_ index: Int32) -> LinkRecord? { state.links.first { $0.index == index } }

    private func isMacvlan(_ link: LinkRecord) -> Bool { link.kind == .macvlan || link.kind == .macvtap }

    /// A macvlan cannot be up with its lower device's MAC or the MAC of another up macvlan on it
    /// (the kernel checks when it opens the macvlan, not when it creates it).
    private func macvlanAddressBusy(_ mac: MACAddress?, lower: Int32, except: Int32?) -> Bool {
        guard let mac else { return false }
        return state.links.contains { other in
            other.index != except && other.mac == mac && (other.index == lower || (other.lowerIndex == lower && isMacvlan(other) && other.isUp))
        }
    }

    private func checkNewName(_ name: String, _ call: Call) throws(NetlinkError) {
        if name.isEmpty || name.utf8.count > 15 || name.contains("/") || name.contains(" ") { throw refuse(call, .invalidArgument) }
        if state.links.contains(where: { $0.name == name }) { throw refuse(call, .fileExists) }
    }

    private func nextMAC() -> MACAddress {
        state.macCounter += 1
        let value = state.macCounter
        return MACAddress([0x0A, 0xEE, UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
                           UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)])
    }

    /// An IPv4 address is secondary when another address on the link, earlier and primary, has the same subnet.
    private func isSecondary(_ address: AddressRecord) -> Bool {
        guard address.family == .inet, let interface = address.ipv4 else { return false }
        for other in state.addresses where other.interfaceIndex == address.interfaceIndex && other.family == .inet {
            if other == address { return false }
            if let candidate = other.ipv4, candidate.prefixLength == interface.prefixLength, candidate.contains(interface.address) { return true }
        }
        return false
    }

    /// The route the kernel adds for an address on an up link: its subnet, on the link.
    private func connectedRoute(_ address: AddressRecord) -> RouteRecord? {
        switch address.family {
        case .inet:
            guard let interface = address.ipv4, interface.prefixLength < 32, !interface.network.isUnspecified else { return nil }
            return RouteRecord(family: .inet, destination: .v4(interface.network), prefixLength: interface.prefixLength,
                               interfaceIndex: address.interfaceIndex, table: .main, routeProtocol: .kernel, scope: .link,
                               type: .unicast, preferredSource: address.address)
        case .inet6:
            guard address.prefixLength < 128 else { return nil }
            return RouteRecord(family: .inet6, destination: Self.ipv6Network(address.address, address.prefixLength), prefixLength: address.prefixLength,
                               interfaceIndex: address.interfaceIndex, table: .main, routeProtocol: .kernel, scope: .universe,
                               type: .unicast, priority: 256)
        }
    }

    private func addConnectedRoutes(_ index: Int32) {
        for address in state.addresses where address.interfaceIndex == index && address.family == .inet && !isSecondary(address) {
            if let route = connectedRoute(address), !state.routes.contains(where: { Self.sameRoute($0, route) }) { state.routes.append(route) }
        }
    }

    static func sameRoute(_ a: RouteRecord, _ b: RouteRecord) -> Bool {
        a.family == b.family && a.table == b.table && a.destination == b.destination && a.prefixLength == b.prefixLength
            && a.interfaceIndex == b.interfaceIndex && a.routeProtocol == b.routeProtocol
    }

    /// The IPv6 network of an address (the destination of its connected route).
    static func ipv6Network(_ address: IPAddress, _ prefixLength: Int) -> IPAddress {
        guard let parsed = address.ipv6 else { return address }
        return .v6(IPv6Interface(address: parsed, prefixLength: prefixLength).network)
    }
}

/// An address written in a test (`ip("10.0.0.2")`); text that does not parse stops the test at once.
package func ip(_ text: String) -> IPAddress {
    guard let address = IPAddress(text) else { preconditionFailure("not an IP address: \(text)") }
    return address
}

extension AddressRecord {
    /// An address as a test writes it, `ADDR/PREFIX` (IPv4 or IPv6) on link `index`, as `ip addr add` makes it.
    package static func on(_ index: Int32, _ cidr: String, scope: RouteScope = .universe, flags: UInt32 = 0) -> AddressRecord {
        if let interface = IPv4Interface(cidr) {
            return AddressRecord(interfaceIndex: index, family: .inet, address: .v4(interface.address), prefixLength: interface.prefixLength,
                                 scope: scope, flags: flags)
        }
        guard let interface = IPv6Interface(cidr) else { preconditionFailure("not ADDR/PREFIX: \(cidr)") }
        return AddressRecord(interfaceIndex: index, family: .inet6, address: .v6(interface.address), prefixLength: interface.prefixLength,
                             scope: scope, flags: flags)
    }
}

extension RouteRecord {
    /// A route as a test writes it, `DEST/PREFIX [via GATEWAY]` on link `index`, as `ip route add … proto boot`
    /// makes it: IPv4 on the link (scope link) without a gateway, metric `metric`; IPv6 always scope universe,
    /// metric 1024 unless given.
    package static func on(_ index: Int32, _ destination: String, via gateway: String? = nil, metric: UInt32? = nil) -> RouteRecord {
        let via = gateway.map { ip($0) }
        if let network = IPv4Interface(destination) {
            return RouteRecord(family: .inet, destination: .v4(network.network), prefixLength: network.prefixLength, gateway: via,
                               interfaceIndex: index, routeProtocol: .boot, scope: gateway == nil ? .link : .universe, priority: metric ?? 0)
        }
        guard let network = IPv6Interface(destination) else { preconditionFailure("not DEST/PREFIX: \(destination)") }
        return RouteRecord(family: .inet6, destination: .v6(network.network), prefixLength: network.prefixLength, gateway: via,
                           interfaceIndex: index, routeProtocol: .boot, scope: .universe, priority: metric ?? 1024)
    }
}
