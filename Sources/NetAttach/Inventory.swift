import Netlink
import NetworkTypes

/// What the container's network namespace holds at one moment: links, addresses, routes.
///
/// The first value of the attach pipeline (`netlink → Inventory → AttachPlan`). It is a plain
/// value, so plans are computed and tested from hand-written inventories without root.
package struct Inventory: Sendable, Equatable, Codable {
    /// Links by ascending interface index.
    package var links: [LinkRecord]
    package var addresses: [AddressRecord]
    package var routes: [RouteRecord]

    package init(links: [LinkRecord], addresses: [AddressRecord] = [], routes: [RouteRecord] = []) {
        self.links = links.sorted { $0.index < $1.index }
        self.addresses = addresses
        self.routes = routes
    }

    package init(_ snapshot: NetworkSnapshot) {
        self.init(links: snapshot.links, addresses: snapshot.addresses, routes: snapshot.routes)
    }

    /// Reads the namespace the socket belongs to: one dump each of links, addresses and routes.
    package static func read(from socket: any NetlinkOperations) throws(NetlinkError) -> Inventory {
        Inventory(try socket.snapshot())
    }

    package func link(named name: String) -> LinkRecord? { links.first { $0.name == name } }
    package func link(index: Int32) -> LinkRecord? { links.first { $0.index == index } }

    /// The addresses on a link, IPv4 before IPv6, each family in kernel order.
    package func addresses(on index: Int32) -> [AddressRecord] {
        let own = addresses.filter { $0.interfaceIndex == index }
        return own.filter { $0.family == .inet } + own.filter { $0.family == .inet6 }
    }

    /// The IPv4 addresses on a link.
    package func ipv4Addresses(on index: Int32) -> [IPv4Interface] {
        addresses(on: index).compactMap(\.ipv4)
    }

    /// Unicast routes of the main table that leave through a link.
    package func routes(through index: Int32, family: AddressFamily = .inet) -> [RouteRecord] {
        routes.filter { $0.interfaceIndex == index && $0.family == family && $0.table == .main && $0.type == .unicast }
    }
}
