import Netlink
import NetworkTypes

/// One change that puts back what a killed launcher left in a namespace.
package enum RestoreStep: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Delete a link kvm-launch created (the kernel releases a bridge's ports with it).
    case deleteLink(index: Int32, name: String)
    /// Give a taken-over interface its original MAC back.
    case setMAC(index: Int32, name: String, mac: MACAddress)
    /// Take an address off for a moment, to re-add it after the VM's address (whose secondary it was).
    case deleteAddress(name: String, AddressRecord)
    /// Put the VM's address back on the interface (or a secondary back after it).
    case addAddress(name: String, AddressRecord)
    /// Take off the link-local address an attach made from the interface's new MAC.
    case removeAddress(name: String, AddressRecord)
    /// Put back a route the kernel removed with the address.
    case addRoute(name: String, RouteRecord)
    /// Put back the alias the interface had (nil: none), which also clears the recorded identity.
    case setAlias(index: Int32, name: String, alias: String?)

    package var description: String {
        switch self {
        case .deleteLink(let index, let name): "delete \(name) (#\(index)), left by an earlier run"
        case .setMAC(_, let name, let mac): "give \(name) its MAC \(mac) back"
        case .deleteAddress(let name, let address): "take \(address.cidr) off \(name), to put it back after the VM's address"
        case .addAddress(let name, let address): "put \(address.cidr) back on \(name)"
        case .removeAddress(let name, let address): "take \(address.cidr) (made from the new MAC) off \(name)"
        case .addRoute(let name, let route): "put route \(RouteOrder.describe(route)) back on \(name)"
        case .setAlias(_, let name, let alias): alias.map { "give \(name) its alias \"\($0)\" back" } ?? "clear the recorded identity from \(name)'s alias"
        }
    }
}

/// What recovery does to a namespace an earlier run left behind, computed once from the
/// ``Inventory``: `--dry-run` prints it, ``Attacher/recover(_:)-(RecoveryPlan)`` executes it, and
/// ``applied(to:)`` gives the inventory the plan is made from.
///
/// The rules: delete every link kvm-launch created (``LinkMarker``); then for every interface
/// whose alias holds a ``RecordedIdentity``, restore its MAC, its address when missing, its missing
/// routes in dependency order (on-link routes before the routes through a gateway they make
/// reachable), and its old alias. Netlink is the only source: no file is trusted.
package struct RecoveryPlan: Sendable, Equatable {
    package var steps: [RestoreStep]
    /// The interfaces whose recorded identity is restored, in index order.
    package var restoredInterfaces: [String]

    /// Nothing to do: the namespace is clean.
    package var isEmpty: Bool { steps.isEmpty }

    package init(_ inventory: Inventory) {
        var steps: [RestoreStep] = []
        var restored: [String] = []
        let created = inventory.links.filter { LinkMarker.isCreated($0, in: inventory) }
        for link in created { steps.append(.deleteLink(index: link.index, name: link.name)) }
        for link in inventory.links {
            guard !created.contains(link), let identity = RecordedIdentity(alias: link.alias) else { continue }
            restored.append(link.name)
            if link.mac != identity.mac { steps.append(.setMAC(index: link.index, name: link.name, mac: identity.mac)) }
            if let address = identity.address, let record = identity.addressRecord(interfaceIndex: link.index),
               !inventory.ipv4Addresses(on: link.index).contains(address) {
                // Addresses in its subnet were its secondaries: they go back after it, as they were.
                // (also those recorded that a death took off).
                let present = inventory.ipv4Addresses(on: link.index).filter { $0.prefixLength == address.prefixLength && address.contains($0.address) }
                let secondaries = present + identity.secondaries.filter { !present.contains($0) }
                func onLink(_ interface: IPv4Interface) -> AddressRecord {
                    AddressRecord(interfaceIndex: link.index, family: .inet, address: .v4(interface.address), prefixLength: interface.prefixLength)
                }
                for secondary in present { steps.append(.deleteAddress(name: link.name, onLink(secondary))) }
                steps.append(.addAddress(name: link.name, record))
                for secondary in secondaries { steps.append(.addAddress(name: link.name, onLink(secondary))) }
            }
            // IPv6: the moved global addresses, then the original link-local address back before the
            // one from the new MAC goes (the fe80::/64 route stays).
            let ipv6Present = inventory.addresses(on: link.index).filter { $0.family == .inet6 }.compactMap(\.ipv6)
            // Last first: the kernel lists the newest first, so the order comes back as it was.
            for (address, record) in zip(identity.ipv6Addresses, identity.ipv6AddressRecords(interfaceIndex: link.index)).reversed() where !ipv6Present.contains(address) {
                steps.append(.addAddress(name: link.name, record))
            }
            if let prefixLength = identity.linkLocalPrefixLength {
                let original = IPv6Interface(address: IPv6Address.linkLocal(eui64: identity.mac), prefixLength: prefixLength)
                if !ipv6Present.contains(original) {
                    steps.append(.addAddress(name: link.name, AddressRecord(interfaceIndex: link.index, family: .inet6, address: .v6(original.address),
                                                                            prefixLength: prefixLength, scope: .link)))
                }
                if let current = link.mac, current != identity.mac,
                   let made = ipv6Present.first(where: { $0.address == IPv6Address.linkLocal(eui64: current) }) {
                    steps.append(.removeAddress(name: link.name, AddressRecord(interfaceIndex: link.index, family: .inet6, address: .v6(made.address),
                                                                               prefixLength: made.prefixLength, scope: .link)))
                }
            }
            let present = Set(inventory.routes(through: link.index).compactMap(RecordedRoute.init).map(\.destination))
            let missing = identity.routes.filter { !present.contains($0.destination) }.map { $0.record(interfaceIndex: link.index) }
            for route in RouteOrder.dependencyOrdered(missing) { steps.append(.addRoute(name: link.name, route)) }
            steps.append(.setAlias(index: link.index, name: link.name, alias: identity.previousAlias))
        }
        self.steps = steps
        self.restoredInterfaces = restored
    }

    /// The inventory as it is once every step succeeded. Pure: what `--dry-run` plans from.
    package func applied(to inventory: Inventory) -> Inventory {
        var result = inventory
        for step in steps {
            switch step {
            case .deleteLink(let index, _):
                result.links.removeAll { $0.index == index }
                result.addresses.removeAll { $0.interfaceIndex == index }
                result.routes.removeAll { $0.interfaceIndex == index }
                for position in result.links.indices where result.links[position].masterIndex == index {
                    result.links[position].masterIndex = nil
                }
            case .setMAC(let index, _, let mac):
                if let position = result.links.firstIndex(where: { $0.index == index }) { result.links[position].mac = mac }
            case .deleteAddress(_, let record), .removeAddress(_, let record):
                result.addresses.removeAll { $0.sameAddress(as: record) }
            case .addAddress(_, let record):
                if !result.addresses.contains(where: { $0.sameAddress(as: record) }) {
                    result.addresses.insert(record, at: AddressRecord.ipv6Position(of: record, in: result.addresses) ?? result.addresses.count)
                }
            case .addRoute(_, let record):
                if !result.routes.contains(record) { result.routes.append(record) }
            case .setAlias(let index, _, let alias):
                if let position = result.links.firstIndex(where: { $0.index == index }) { result.links[position].alias = alias }
            }
        }
        return result
    }
}

/// The order routes are re-added in, and how they read in messages.
package enum RouteOrder {
    /// On-link routes first, then routes through a gateway, each group in its given order.
    ///
    /// The kernel accepts a route through a gateway only when the gateway is reachable on the link
    /// already (a link-scope route or an address's subnet covers it): Calico's `default via
    /// 169.254.1.1` needs `169.254.1.1 dev eth0 scope link` first.
    package static func dependencyOrdered(_ routes: [RouteRecord]) -> [RouteRecord] {
        routes.filter { $0.gateway == nil } + routes.filter { $0.gateway != nil }
    }

    /// `default via 169.254.1.1 dev #5`, `169.254.1.1/32 dev #5 scope link`.
    package static func describe(_ route: RouteRecord) -> String {
        var text = route.isDefault ? "default" : "\(route.destination)/\(route.prefixLength)"
        if let gateway = route.gateway { text += " via \(gateway)" }
        if let index = route.interfaceIndex { text += " dev #\(index)" }
        if route.scope == .link { text += " scope link" }
        if route.priority != 0 { text += " metric \(route.priority)" }
        return text
    }
}

extension Inventory {
    /// This inventory as recovery will leave it (``RecoveryPlan/applied(to:)``): kvm-launch's own
    /// links gone, and every interface with a recorded identity back to its MAC, address, routes
    /// and alias. Pure, so `--dry-run` shows the plan a restarted launcher will make.
    package func restoringRecordedIdentities() -> Inventory {
        RecoveryPlan(self).applied(to: self)
    }
}

extension AddressRecord {
    /// The same address and prefix on the same link (IPv6 compared parsed, so textual forms do not matter).
    func sameAddress(as other: AddressRecord) -> Bool {
        guard interfaceIndex == other.interfaceIndex && family == other.family else { return false }
        switch family {
        case .inet: return ipv4 != nil && ipv4 == other.ipv4
        case .inet6: return ipv6 != nil && ipv6 == other.ipv6
        }
    }
}
