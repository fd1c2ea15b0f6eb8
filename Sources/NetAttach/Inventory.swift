import Netlink
import NetworkTypes

/// What the container's network namespace holds at one moment: links, addresses, routes.
///
/// The first value of the attach pipeline (`netlink → Inventory → AttachPlan`). It is a plain
/// value, so plans are computed and tested from hand-written inventories without root.
public struct Inventory: Sendable, Equatable, Codable {
    /// Links by ascending interface index.
    public var links: [LinkRecord]
    public var addresses: [AddressRecord]
    public var routes: [RouteRecord]

    public init(links: [LinkRecord], addresses: [AddressRecord] = [], routes: [RouteRecord] = []) {
        self.links = links.sorted { $0.index < $1.index }
        self.addresses = addresses
        self.routes = routes
    }

    public init(_ snapshot: NetworkSnapshot) {
        self.init(links: snapshot.links, addresses: snapshot.addresses, routes: snapshot.routes)
    }

    /// Reads the namespace the socket belongs to: one dump each of links, addresses and routes.
    public static func read(from socket: any NetlinkOperations) throws(NetlinkError) -> Inventory {
        Inventory(try socket.snapshot())
    }

    public func link(named name: String) -> LinkRecord? { links.first { $0.name == name } }
    public func link(index: Int32) -> LinkRecord? { links.first { $0.index == index } }

    /// The addresses on a link, IPv4 before IPv6, each family in kernel order.
    public func addresses(on index: Int32) -> [AddressRecord] {
        let own = addresses.filter { $0.interfaceIndex == index }
        return own.filter { $0.family == .inet } + own.filter { $0.family == .inet6 }
    }

    /// The IPv4 addresses on a link.
    public func ipv4Addresses(on index: Int32) -> [IPv4Interface] {
        addresses(on: index).compactMap(\.ipv4)
    }

    /// Unicast routes of the main table that leave through a link.
    public func routes(through index: Int32, family: AddressFamily = .inet) -> [RouteRecord] {
        routes.filter { $0.interfaceIndex == index && $0.family == family && $0.table == .main && $0.type == .unicast }
    }
}
