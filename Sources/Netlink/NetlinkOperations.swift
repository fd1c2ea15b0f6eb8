import NetworkTypes
import SystemPackage

/// The netlink operations kvm-launch needs, in front of the kernel: reading a namespace's links,
/// addresses and routes, and the few changes the attach, teardown and recovery make.
///
/// ``NetlinkSocket`` is the real one (libnl-3). Unit tests put an in-memory namespace behind it
/// that refuses what the kernel refuses, so the attacher's journal, rollback and recovery are tested
/// without root. Addresses and routes carry their ``AddressFamily``: the protocol is the same for IPv6.
package protocol NetlinkOperations: AnyObject {
    /// Every link, by ascending index.
    func links() throws(NetlinkError) -> [LinkRecord]
    /// Every IPv4 and IPv6 address.
    func addresses() throws(NetlinkError) -> [AddressRecord]
    /// Every IPv4 and IPv6 route of every table.
    func routes() throws(NetlinkError) -> [RouteRecord]
    /// One link by name, or nil when there is none.
    func link(named name: String) throws(NetlinkError) -> LinkRecord?
    /// One link by index, or nil when there is none.
    func link(index: Int32) throws(NetlinkError) -> LinkRecord?

    /// Creates a macvtap or macvlan on `parentIndex` in bridge mode, in link group `group`.
    /// Returns the new link's index when the kernel told it with its answer (nil: look it up).
    @discardableResult
    func addMacvlan(kind: MacvlanKind, name: String, parentIndex: Int32, mac: MACAddress?, up: Bool, group: UInt32) throws(NetlinkError) -> Int32?
    /// Creates a Linux bridge in link group `group`.
    /// Returns the new link's index when the kernel told it with its answer (nil: look it up).
    @discardableResult
    func addBridge(name: String, mac: MACAddress?, group: UInt32) throws(NetlinkError) -> Int32?
    /// Deletes a link (and with it its addresses and routes).
    func deleteLink(index: Int32) throws(NetlinkError)
    /// Deletes every link of a (non-default) link group in one request.
    func deleteLinks(group: UInt32) throws(NetlinkError)
    /// Changes attributes of an existing link in one request.
    func changeLink(index: Int32, _ change: LinkChange) throws(NetlinkError)

    /// Adds an address to a link (refused with `EEXIST` when it is there).
    func addAddress(_ address: AddressRecord) throws(NetlinkError)
    /// Removes an address from a link.
    func deleteAddress(_ address: AddressRecord) throws(NetlinkError)
    /// Adds a route (refused with `EEXIST` when one with the same destination and metric is there).
    func addRoute(_ route: RouteRecord) throws(NetlinkError)
    /// Deletes a route.
    func deleteRoute(_ route: RouteRecord) throws(NetlinkError)
}

/// What ``NetlinkOperations/changeLink(index:_:)`` changes; nil leaves an attribute as it is.
package struct LinkChange: Sendable, Equatable, CustomStringConvertible {
    package var mac: MACAddress?
    package var up: Bool?
    package var mtu: Int?
    /// A new alias; the empty string clears it.
    package var alias: String?
    /// A bridge to make the link a port of; 0 releases it.
    package var masterIndex: Int32?
    package var name: String?
    /// A link group (`IFLA_GROUP`).
    package var group: UInt32?

    package init(mac: MACAddress? = nil, up: Bool? = nil, mtu: Int? = nil, alias: String? = nil, masterIndex: Int32? = nil,
                name: String? = nil, group: UInt32? = nil) {
        self.mac = mac
        self.up = up
        self.mtu = mtu
        self.alias = alias
        self.masterIndex = masterIndex
        self.name = name
        self.group = group
    }

    package var isEmpty: Bool { self == LinkChange() }

    /// "MAC 02:…, up, alias" — what the change sets.
    package var description: String {
        var what: [String] = []
        if let mac { what.append("MAC \(mac)") }
        if let up { what.append(up ? "up" : "down") }
        if let mtu { what.append("MTU \(mtu)") }
        if alias != nil { what.append("alias") }
        if let masterIndex { what.append(masterIndex == 0 ? "no master" : "master #\(masterIndex)") }
        if let name { what.append("name \(name)") }
        if let group { what.append("group \(group)") }
        return what.joined(separator: ", ")
    }
}

extension NetlinkOperations {
    /// Every link, address and route of the namespace.
    package func snapshot() throws(NetlinkError) -> NetworkSnapshot {
        NetworkSnapshot(links: try links(), addresses: try addresses(), routes: try routes())
    }

    /// Changes attributes of an existing link; nil leaves an attribute as it is.
    package func changeLink(index: Int32, mac: MACAddress? = nil, up: Bool? = nil, mtu: Int? = nil,
                           alias: String? = nil, masterIndex: Int32? = nil, name: String? = nil, group: UInt32? = nil) throws(NetlinkError) {
        let change = LinkChange(mac: mac, up: up, mtu: mtu, alias: alias, masterIndex: masterIndex, name: name, group: group)
        guard !change.isEmpty else { return }
        try changeLink(index: index, change)
    }

    /// Creates a macvtap or macvlan in the default link group.
    @discardableResult
    package func addMacvlan(kind: MacvlanKind, name: String, parentIndex: Int32, mac: MACAddress?, up: Bool = false) throws(NetlinkError) -> Int32? {
        try addMacvlan(kind: kind, name: name, parentIndex: parentIndex, mac: mac, up: up, group: 0)
    }

    /// Creates a Linux bridge in the default link group.
    @discardableResult
    package func addBridge(name: String, mac: MACAddress? = nil) throws(NetlinkError) -> Int32? {
        try addBridge(name: name, mac: mac, group: 0)
    }
}

/// The character devices the attacher opens: TAP devices (which are links while open) and
/// macvtap device nodes. ``SystemTapDevices`` is the real one; unit tests model it in memory.
package protocol TapDeviceOperations: AnyObject {
    /// Creates a TAP link named `name` with `queues` queues (one descriptor each, `IFF_MULTI_QUEUE`
    /// above one); the link lives while a descriptor is open. All or none: nothing stays open on failure.
    func openTap(named name: String, queues: Int) throws(TapDevices.Error) -> [FileDescriptor]
    /// Makes a private device node for the macvtap `name` (index `index`) at `nodePath` and opens it
    /// once per queue (`IFF_MULTI_QUEUE` above one). All or none.
    func openMacvtap(name: String, index: Int32, nodePath: String, queues: Int) throws(TapDevices.Error) -> [FileDescriptor]
    /// `/dev/vhost-net`, when it exists and opens.
    func openVhostNet() -> FileDescriptor?
    /// Closes a descriptor this returned, and removes its device node when it has one.
    func close(_ descriptor: FileDescriptor, nodePath: String?) throws(TapDevices.Error)
    /// Closes several at once (each close of a TAP or macvtap waits for the kernel; the real one
    /// lets those waits overlap). One result per item, nil when it closed.
    func closeAll(_ items: [DeviceToClose]) -> [TapDevices.Error?]
    /// The same, with `meanwhile` run on the calling thread while the closes wait in the kernel: the
    /// real one starts every close first, so a close that needs the RTNL lock briefly before its grace
    /// period (a macvtap's) takes it before `meanwhile` (a link deletion) holds it for long, and the
    /// two waits overlap. One result per item, nil when it closed.
    func closeAll(_ items: [DeviceToClose], meanwhile: () -> Void) -> [TapDevices.Error?]
    /// Removes device nodes named `prefix…` in `directory` that an earlier run left behind.
    func removeStaleNodes(in directory: String, prefix: String)
}

/// A descriptor to close, and the device node to remove with it.
package struct DeviceToClose: Sendable, Equatable {
    package var descriptor: FileDescriptor
    package var nodePath: String?
    package init(descriptor: FileDescriptor, nodePath: String?) {
        self.descriptor = descriptor
        self.nodePath = nodePath
    }
}
