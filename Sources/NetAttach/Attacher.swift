import Logging
import Netlink
import NetworkTypes
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// One step of the undo journal: what puts back something the attach step changed.
public enum UndoStep: Sendable, CustomStringConvertible {
    case restoreAlias(index: Int32, alias: String?)
    case restoreMAC(index: Int32, mac: MACAddress)
    case restoreAddress(AddressRecord, routes: [RouteRecord])
    case deleteLink(name: String)
    case releaseFromBridge(index: Int32)
    case closeDescriptor(FileDescriptor, nodePath: String?)

    public var description: String {
        switch self {
        case .restoreAlias(let index, _): return "restore the alias of link #\(index)"
        case .restoreMAC(let index, let mac): return "restore MAC \(mac) on link #\(index)"
        case .restoreAddress(let address, let routes): return "restore address \(address.cidr) and \(routes.count) route(s) on link #\(address.interfaceIndex)"
        case .deleteLink(let name): return "delete link \(name)"
        case .releaseFromBridge(let index): return "release link #\(index) from its bridge"
        case .closeDescriptor(let descriptor, let node): return "close descriptor \(descriptor.rawValue)" + (node.map { " and remove \($0)" } ?? "")
        }
    }
}

/// What the VM gets for one interface once it is attached.
public struct Attachment: Sendable {
    public var plan: InterfacePlan
    /// The macvtap device node or the tap, opened read-write: QEMU's `-netdev tap,fd=`.
    public var descriptor: FileDescriptor
    /// `/dev/vhost-net`, when it opened.
    public var vhostDescriptor: FileDescriptor?
}

/// Attaching one interface failed; everything already done was undone.
public struct AttachError: Error, Sendable, CustomStringConvertible {
    public var interface: String
    public var step: String
    public var cause: String
    /// Undo steps that failed in turn (empty when the container is as it was).
    public var rollbackProblems: [String]

    public var description: String {
        let restored = rollbackProblems.isEmpty
            ? "every change was undone"
            : "undoing failed too: \(rollbackProblems.joined(separator: "; "))"
        return "cannot attach \(interface): \(step) failed: \(cause) (\(restored))"
    }
}

/// Applies an ``AttachPlan`` through netlink, recording an undo step for every change, so a
/// failure part-way or the end of the VM puts the container back as it was.
///
/// Not thread-safe: one attacher per launch, used from one task.
public final class Attacher {
    let socket: NetlinkSocket
    let logger: Logger
    /// Where private macvtap device nodes are made, opened and removed at once: this launcher's
    /// own run directory (`/run/kvm-launch/vm-…`), which the caller creates. Nothing else in it, or
    /// anywhere else, is cleaned up: another container may share `/run`.
    public let nodeDirectory: String
    /// Called after every completed step with its number (1-based); fault injection for tests.
    let afterStep: ((Int) -> Void)?
    private(set) var journal: [UndoStep] = []
    private var stepCount = 0

    public init(socket: NetlinkSocket, nodeDirectory: String, logger: Logger, afterStep: ((Int) -> Void)? = nil) {
        self.socket = socket
        self.nodeDirectory = nodeDirectory
        self.logger = logger
        self.afterStep = afterStep
    }

    // MARK: - Recovery

    /// Puts back what a killed launcher left in this namespace: deletes every link kvm-launch
    /// created and restores every interface whose alias holds a ``RecordedIdentity``.
    ///
    /// Netlink is the only source: no state file is trusted. Returns the names of restored
    /// interfaces; throws when the namespace cannot be brought back.
    @discardableResult
    public func recover(_ inventory: Inventory) throws(NetlinkError) -> [String] {
        for link in inventory.links where LinkMarker.isCreated(link, in: inventory) {
            // A bridge first releases its ports; taps vanished with their QEMU.
            do {
                try socket.deleteLink(index: link.index)
                logger.info("removed \(link.name), left behind by an earlier run")
            } catch where error.isNotFound {
                continue
            }
        }
        var restored: [String] = []
        for link in inventory.links {
            guard let identity = RecordedIdentity(alias: link.alias) else { continue }
            try restore(index: link.index, identity: identity, current: inventory)
            restored.append(link.name)
            logger.notice("restored \(link.name) (MAC \(identity.mac)\(identity.address.map { ", \($0)" } ?? "")) from the state an earlier run recorded in its alias")
        }
        return restored
    }

    func restore(index: Int32, identity: RecordedIdentity, current: Inventory) throws(NetlinkError) {
        if current.link(index: index)?.masterIndex != nil { try socket.changeLink(index: index, masterIndex: 0) }
        try socket.changeLink(index: index, mac: identity.mac)
        if let address = identity.address, let record = identity.addressRecord(interfaceIndex: index),
           !current.ipv4Addresses(on: index).contains(address) {
            try ignoringExists { () throws(NetlinkError) in try socket.addAddress(record) }
        }
        let present = Set(current.routes(through: index).compactMap(RecordedRoute.init).map(\.destination))
        for route in identity.routes where !present.contains(route.destination) {
            try ignoringExists { () throws(NetlinkError) in try socket.addRoute(route.record(interfaceIndex: index)) }
        }
        try socket.changeLink(index: index, alias: identity.previousAlias ?? "")
    }

    // MARK: - Attach

    /// Attaches every planned interface, in order. All or nothing: on failure every change made so
    /// far is undone and the error names the interface, the step and the cause.
    public func apply(_ plan: AttachPlan) throws(AttachError) -> [Attachment] {
        var attachments: [Attachment] = []
        for interface in plan.interfaces {
            do {
                attachments.append(try attach(interface))
            } catch let failure {
                let problems = teardown()
                throw AttachError(interface: interface.name, step: failure.step, cause: failure.cause, rollbackProblems: problems)
            }
        }
        return attachments
    }

    /// Undoes every recorded step, most recent first, best effort. Returns what could not be undone.
    @discardableResult
    public func teardown() -> [String] {
        var problems: [String] = []
        while let step = journal.popLast() {
            do {
                try undo(step)
                logger.debug("undone: \(step)")
            } catch {
                problems.append("\(step): \(error)")
                logger.error("could not \(step): \(error)")
            }
        }
        return problems
    }

    struct StepFailure: Error {
        var step: String
        var cause: String
    }

    private func step<T>(_ name: String, _ body: () throws -> T) throws(StepFailure) -> T {
        do {
            let result = try body()
            stepCount += 1
            logger.debug("step \(stepCount): \(name)")
            afterStep?(stepCount)
            return result
        } catch {
            throw StepFailure(step: name, cause: "\(error)")
        }
    }

    private func attach(_ plan: InterfacePlan) throws(StepFailure) -> Attachment {
        let index = plan.index
        let (alias, dropped) = plan.identity.encoded()
        if dropped > 0 {
            logger.warning("\(plan.name): \(dropped) route(s) do not fit in the link alias; after a restart in the same namespace they are not restored")
        }
        try step("record the original identity of \(plan.name) in its alias") {
            try socket.changeLink(index: index, alias: alias)
            journal.append(.restoreAlias(index: index, alias: plan.previousAlias))
        }
        if let address = plan.guestAddress, let record = plan.identity.addressRecord(interfaceIndex: index) {
            try step("move \(address) off \(plan.name)") {
                let routes = plan.routes.map { $0.record(interfaceIndex: index) }
                try socket.deleteAddress(record)
                journal.append(.restoreAddress(record, routes: routes))
            }
        }
        try step("give \(plan.name) the new MAC \(plan.containerMAC)") {
            try socket.changeLink(index: index, mac: plan.containerMAC)
            journal.append(.restoreMAC(index: index, mac: plan.guestMAC))
        }

        let descriptor: FileDescriptor
        switch plan.mode {
        case .macvtap:
            try step("create macvtap \(plan.vmLinkName) on \(plan.name)") {
                try socket.addMacvlan(kind: .macvtap, name: plan.vmLinkName, parentIndex: index, mac: plan.guestMAC)
                journal.append(.deleteLink(name: plan.vmLinkName))
            }
            let tap = try step("bring up \(plan.vmLinkName)") { () throws -> LinkRecord in
                let tap = try lookUp(plan.vmLinkName)
                try socket.changeLink(index: tap.index, up: true, alias: LinkMarker.createdAlias)
                return tap
            }
            try createContainerSide(plan)
            descriptor = try step("open the device of \(plan.vmLinkName)") {
                let node = "\(nodeDirectory)/\(plan.vmLinkName)"
                let descriptor = try TapDevices.openMacvtap(name: plan.vmLinkName, index: tap.index, nodePath: node)
                journal.append(.closeDescriptor(descriptor, nodePath: node))
                return descriptor
            }
        case .bridge:
            guard let bridgeName = plan.bridgeName else { throw StepFailure(step: "plan", cause: "bridge mode without a bridge name") }
            try createContainerSide(plan)
            let bridge = try step("look up \(bridgeName)") { try lookUp(bridgeName) }
            try step("make \(plan.name) a port of \(bridgeName)") {
                try socket.changeLink(index: index, masterIndex: bridge.index)
                journal.append(.releaseFromBridge(index: index))
            }
            descriptor = try step("create tap \(plan.vmLinkName)") {
                let descriptor = try TapDevices.openTap(named: plan.vmLinkName)
                journal.append(.closeDescriptor(descriptor, nodePath: nil))
                return descriptor
            }
            try step("add \(plan.vmLinkName) to \(bridgeName)") {
                let tap = try lookUp(plan.vmLinkName)
                try socket.changeLink(index: tap.index, mtu: plan.mtu, alias: LinkMarker.createdAlias, masterIndex: bridge.index)
                try socket.changeLink(index: tap.index, up: true)
            }
        }
        let vhost = TapDevices.openVhostNet()
        if let vhost { journal.append(.closeDescriptor(vhost, nodePath: nil)) }
        logger.info("attached \(plan.name): VM MAC \(plan.guestMAC)\(plan.guestAddress.map { ", VM address \($0)" } ?? ""), \(plan.mode.rawValue) \(plan.vmLinkName), container side \(plan.containerSideName) \(plan.containerSideAddress)")
        return Attachment(plan: plan, descriptor: descriptor, vhostDescriptor: vhost)
    }

    /// The container's own device toward the VM: a macvlan (macvtap mode) or the bridge.
    private func createContainerSide(_ plan: InterfacePlan) throws(StepFailure) {
        let name = plan.containerSideName
        try step("create \(name) for the container side of \(plan.name)") {
            if plan.mode == .bridge {
                try socket.addBridge(name: name, mac: MACAddress.randomLocal())
            } else {
                try socket.addMacvlan(kind: .macvlan, name: name, parentIndex: plan.index, mac: MACAddress.randomLocal())
            }
            journal.append(.deleteLink(name: name))
        }
        try step("address \(name) with \(plan.containerSideAddress)") {
            let link = try lookUp(name)
            try socket.changeLink(index: link.index, up: true, alias: LinkMarker.createdAlias)
            try socket.addAddress(Self.addressRecord(plan.containerSideAddress, index: link.index))
        }
    }

    private func lookUp(_ name: String) throws -> LinkRecord {
        guard let link = try socket.link(named: name) else {
            throw NetlinkError(operation: "find link \(name)", reason: "it vanished right after it was created")
        }
        return link
    }

    private func undo(_ step: UndoStep) throws {
        switch step {
        case .restoreAlias(let index, let alias):
            try socket.changeLink(index: index, alias: alias ?? "")
        case .restoreMAC(let index, let mac):
            try socket.changeLink(index: index, mac: mac)
        case .restoreAddress(let address, let routes):
            try ignoringExists { () throws(NetlinkError) in try socket.addAddress(address) }
            for route in routes {
                try ignoringExists { () throws(NetlinkError) in try socket.addRoute(route) }
            }
        case .deleteLink(let name):
            if let link = try socket.link(named: name) { try socket.deleteLink(index: link.index) }
        case .releaseFromBridge(let index):
            try socket.changeLink(index: index, masterIndex: 0)
        case .closeDescriptor(let descriptor, let node):
            try descriptor.close()
            if let node { unlink(node) }
        }
    }

    static func addressRecord(_ address: IPv4Interface, index: Int32) -> AddressRecord {
        AddressRecord(interfaceIndex: index, family: .inet, address: address.address.description, prefixLength: address.prefixLength)
    }
}

private func ignoringExists(_ body: () throws(NetlinkError) -> Void) throws(NetlinkError) {
    do { try body() } catch where error.isExists { return }
}
