import LaunchConfiguration
import Netlink

/// Why a link is not handed to the VM.
package enum ExclusionReason: String, Sendable, Equatable, Codable, CustomStringConvertible {
    case loopback = "loopback"
    case bridge = "bridge"
    case bridgePort = "bridge port"
    case down = "down"
    case notListed = "not in ATTACH_IFACES"
    case createdByKVMLaunch = "created by kvm-launch"
    /// Not an Ethernet link (a TUN device, WireGuard, …): a VM's NIC needs Ethernet frames and a MAC.
    case notEthernet = "not Ethernet"
    case noSelection = "AUTO_ATTACH not set"

    package var description: String { rawValue }
}

/// The verdict on one link.
package struct InterfaceDecision: Sendable, Equatable {
    package var link: LinkRecord
    /// Position in the VM's NIC order, when attached.
    package var order: Int?
    package var reason: ExclusionReason?
    package var attach: Bool { reason == nil }
}

/// A selection that names something that cannot be attached.
package enum SelectionError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownInterface(name: String, existing: [String])
    case cannotAttach(name: String, reason: ExclusionReason)

    package var description: String {
        switch self {
        case .unknownInterface(let name, let existing):
            return "ATTACH_IFACES names \(name), but this container has no such interface; it has: \(existing.joined(separator: ", "))"
        case .cannotAttach(let name, let reason):
            switch reason {
            case .loopback: return "ATTACH_IFACES names \(name), the loopback interface, which cannot be given to a VM; remove it"
            case .bridgePort: return "ATTACH_IFACES names \(name), which is a port of a bridge and cannot carry a macvtap; name the bridge or another interface"
            case .createdByKVMLaunch: return "ATTACH_IFACES names \(name), which kvm-launch created itself; name the container interface it sits on"
            case .notEthernet: return "ATTACH_IFACES names \(name), which is not an Ethernet link (no MAC, e.g. a TUN device) and cannot be given to a VM; remove it"
            default: return "ATTACH_IFACES names \(name), which cannot be attached (\(reason))"
            }
        }
    }
}

/// Applies the `AUTO_ATTACH` / `ATTACH_IFACES` rules to an inventory. Pure.
package enum InterfaceSelection {
    /// A verdict for every link of the inventory, in the inventory's (index) order.
    ///
    /// With `.automatic`, the attached links get NIC positions in natural name order (see
    /// ``precedesInNICOrder(_:_:)``), never by index: podman may create `eth1` before `eth0`.
    /// With `.named`, in the given order. `nil` (no `AUTO_ATTACH`) attaches nothing and says so,
    /// which is what listing needs.
    package static func decide(_ inventory: Inventory, selection: LaunchConfiguration.Selection?) throws(SelectionError) -> [InterfaceDecision] {
        switch selection {
        case nil:
            return inventory.links.map { InterfaceDecision(link: $0, reason: automaticExclusion($0, in: inventory) ?? .noSelection) }
        case .automatic:
            let attached = inventory.links.filter { automaticExclusion($0, in: inventory) == nil }.map(\.name)
                .sorted(by: precedesInNICOrder)
            return inventory.links.map { link in
                if let reason = automaticExclusion(link, in: inventory) { return InterfaceDecision(link: link, reason: reason) }
                return InterfaceDecision(link: link, order: attached.firstIndex(of: link.name), reason: nil)
            }
        case .named(let names):
            for name in names {
                guard let link = inventory.link(named: name) else {
                    throw .unknownInterface(name: name, existing: inventory.links.map(\.name))
                }
                if link.kind == .loopback { throw .cannotAttach(name: name, reason: .loopback) }
                if LinkMarker.isCreated(link, in: inventory) { throw .cannotAttach(name: name, reason: .createdByKVMLaunch) }
                if !isEthernet(link) { throw .cannotAttach(name: name, reason: .notEthernet) }
                if isForeignBridgePort(link, in: inventory) { throw .cannotAttach(name: name, reason: .bridgePort) }
            }
            return inventory.links.map { link in
                if let position = names.firstIndex(of: link.name) {
                    return InterfaceDecision(link: link, order: position, reason: nil)
                }
                return InterfaceDecision(link: link, reason: automaticExclusion(link, in: inventory) ?? .notListed)
            }
        }
    }

    /// The attached links in the VM's NIC order.
    package static func selected(_ decisions: [InterfaceDecision]) -> [LinkRecord] {
        decisions.filter(\.attach).sorted { ($0.order ?? 0) < ($1.order ?? 0) }.map(\.link)
    }

    /// The `AUTO_ATTACH=yes` NIC order: `ethN` names first by the number N (`eth0`, `eth1`, …,
    /// `eth10`), then every other name in natural order: text compared character by character,
    /// runs of digits by their value (`net1`, `net2`, …, `net10`). Ties (`eth01` and `eth1`) fall
    /// back to plain byte order, so the order is total.
    package static func precedesInNICOrder(_ left: String, _ right: String) -> Bool {
        let leftEth = ethernetNumber(left), rightEth = ethernetNumber(right)
        if (leftEth == nil) != (rightEth == nil) { return leftEth != nil }
        let order = naturalOrder(left, right)
        return order == 0 ? Array(left.utf8).lexicographicallyPrecedes(Array(right.utf8)) : order < 0
    }

    /// What the rule says, for `--list-ifaces` and the README.
    package static let nicOrderRule = "AUTO_ATTACH=yes orders NICs by name: eth0, eth1, …, eth10, then other names in natural order (net1, net2, …); ATTACH_IFACES keeps the order it is given"

    /// N of a name `eth` + digits only.
    static func ethernetNumber(_ name: String) -> Substring? {
        guard name.hasPrefix("eth") else { return nil }
        let digits = name.dropFirst(3)
        return !digits.isEmpty && digits.allSatisfy(\.isASCIIDigit) ? digits : nil
    }

    /// -1, 0, 1: `left` before, level with, after `right` in natural order.
    static func naturalOrder(_ left: String, _ right: String) -> Int {
        var a = Substring(left), b = Substring(right)
        while let x = a.first, let y = b.first {
            if x.isASCIIDigit && y.isASCIIDigit {
                let runA = a.prefix(while: \.isASCIIDigit), runB = b.prefix(while: \.isASCIIDigit)
                let valueA = runA.drop { $0 == "0" }, valueB = runB.drop { $0 == "0" }
                if valueA.count != valueB.count { return valueA.count < valueB.count ? -1 : 1 }
                if valueA != valueB { return valueA < valueB ? -1 : 1 }
                a = a.dropFirst(runA.count)
                b = b.dropFirst(runB.count)
            } else {
                if x != y { return x < y ? -1 : 1 }
                a = a.dropFirst()
                b = b.dropFirst()
            }
        }
        return a.isEmpty && b.isEmpty ? 0 : (a.isEmpty ? -1 : 1)
    }

    /// A port of a bridge that kvm-launch did not create (a port of its own bridge is an
    /// interface attached by an earlier run, and stays selected).
    static func isForeignBridgePort(_ link: LinkRecord, in inventory: Inventory) -> Bool {
        guard let master = link.masterIndex, let bridge = inventory.link(index: master), bridge.kind == .bridge else { return false }
        return !LinkMarker.isCreated(bridge, in: inventory)
    }

    /// Whether a link carries Ethernet frames (`ARPHRD_ETHER`): a TAP does, a TUN or WireGuard link does not.
    static func isEthernet(_ link: LinkRecord) -> Bool { link.hardwareType == .ethernet }

    /// Why `AUTO_ATTACH=yes` leaves a link out, or nil to attach it.
    static func automaticExclusion(_ link: LinkRecord, in inventory: Inventory) -> ExclusionReason? {
        if link.kind == .loopback { return .loopback }
        if LinkMarker.isCreated(link, in: inventory) { return .createdByKVMLaunch }
        if link.kind == .bridge { return .bridge }
        if isForeignBridgePort(link, in: inventory) { return .bridgePort }
        if !isEthernet(link) { return .notEthernet }
        if !link.isUp { return .down }
        return nil
    }
}

private extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
