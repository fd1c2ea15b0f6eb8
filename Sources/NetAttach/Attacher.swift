import Logging
import Netlink
import NetworkTypes
import SystemPackage

/// One step of attaching one interface, in the order the ``Attacher`` takes them.
///
/// The list for an interface is a value (``Attacher/steps(for:)``): the attacher executes it,
/// `--dry-run --json` shows it, and fault-injection tests count it. Each completed step has
/// recorded its undo before the next one starts.
package enum AttachStep: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Write the interface's ``RecordedIdentity`` into its alias, before anything else changes.
    case recordIdentity(interface: String)
    /// Remove the VM's address from the interface (the kernel takes routes that need it along).
    case moveAddressOff(IPv4Interface, interface: String)
    /// Remove the global IPv6 addresses the VM gets from the interface (journalled one by one).
    case moveIPv6AddressesOff([IPv6Interface], interface: String)
    /// Give the interface a new random MAC, so the VM can have the original.
    case changeMAC(MACAddress, interface: String)
    /// Add the link-local address made from the new MAC, then remove the one made from the original
    /// (the VM's own), in that order so the link's fe80::/64 route stays.
    case swapLinkLocal(from: [IPv6Interface], to: IPv6Interface, interface: String)
    /// Macvtap mode: create the macvtap with the original MAC on the interface.
    case createMacvtap(name: String, interface: String)
    /// Macvtap mode: bring the macvtap up and mark it as kvm-launch's.
    case bringUpMacvtap(name: String)
    /// Create the container's own device toward the VM: a macvlan, or the bridge in bridge mode.
    case createContainerSide(name: String, bridge: Bool, interface: String)
    /// Bring the container side up, mark it and give it its address.
    case addressContainerSide(name: String, address: IPv4Interface)
    /// Macvtap mode: make a private device node for the macvtap and open it.
    case openMacvtapDevice(name: String)
    /// Bridge mode: make the interface a port of the bridge.
    case addPort(interface: String, bridge: String)
    /// Bridge mode: create the tap (it lives while its descriptor is open).
    case createTap(name: String)
    /// Bridge mode: mark the tap, set its MTU, make it a port of the bridge and bring it up.
    case addTapToBridge(tap: String, bridge: String)

    package var description: String {
        switch self {
        case .recordIdentity(let interface): "record the original identity of \(interface) in its alias"
        case .moveAddressOff(let address, let interface): "move \(address) off \(interface)"
        case .moveIPv6AddressesOff(let addresses, let interface): "move \(addresses.map(\.description).joined(separator: ", ")) off \(interface)"
        case .changeMAC(let mac, let interface): "give \(interface) the new MAC \(mac)"
        case .swapLinkLocal(let old, let new, let interface): "give \(interface) the link-local address \(new) instead of \(old.map(\.description).joined(separator: ", "))"
        case .createMacvtap(let name, let interface): "create macvtap \(name) on \(interface)"
        case .bringUpMacvtap(let name): "bring up \(name)"
        case .createContainerSide(let name, let bridge, let interface): "create \(bridge ? "bridge" : "macvlan") \(name) for the container side of \(interface)"
        case .addressContainerSide(let name, let address): "address \(name) with \(address)"
        case .openMacvtapDevice(let name): "open the device of \(name)"
        case .addPort(let interface, let bridge): "make \(interface) a port of \(bridge)"
        case .createTap(let name): "create tap \(name)"
        case .addTapToBridge(let tap, let bridge): "add \(tap) to \(bridge)"
        }
    }
}

/// Why a step (or an undo) failed: the typed error underneath, rendered only when printed.
package enum AttachCause: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kernel (or libnl) refused a netlink request; carries the errno.
    case netlink(NetlinkError)
    /// A TAP device or macvtap node could not be made, opened or closed; carries the errno.
    case device(TapDevices.Error)
    /// A link created a moment ago is not there.
    case vanished(link: String)

    package var description: String {
        switch self {
        case .netlink(let error): error.description
        case .device(let error): error.description
        case .vanished(let link): "link \(link) vanished right after it was created"
        }
    }
}

extension TapDevices.Error: Equatable {
    package static func == (lhs: TapDevices.Error, rhs: TapDevices.Error) -> Bool {
        lhs.operation == rhs.operation && lhs.errno == rhs.errno
    }
}

/// One step of the undo journal: what puts back something the attach step changed.
package enum UndoStep: Sendable, CustomStringConvertible {
    case restoreAlias(index: Int32, alias: String?)
    case restoreMAC(index: Int32, mac: MACAddress)
    /// Re-add the address, then the routes the kernel took with it (in dependency order). Its
    /// secondaries (kept addresses in its subnet, which the kernel deleted with it and the attach put
    /// back) are taken off and re-added after it, so it is primary again as before.
    case restoreAddress(AddressRecord, routes: [RouteRecord], secondaries: [AddressRecord])
    /// Take off an address the attach added (the container interface's new link-local address).
    case removeAddress(AddressRecord)
    case deleteLink(name: String)
    case releaseFromBridge(index: Int32)
    case closeDescriptor(FileDescriptor, nodePath: String?)

    package var description: String {
        switch self {
        case .restoreAlias(let index, _): return "restore the alias of link #\(index)"
        case .restoreMAC(let index, let mac): return "restore MAC \(mac) on link #\(index)"
        case .restoreAddress(let address, let routes, _): return "restore address \(address.cidr) and \(routes.count) route(s) on link #\(address.interfaceIndex)"
        case .removeAddress(let address): return "remove address \(address.cidr) from link #\(address.interfaceIndex)"
        case .deleteLink(let name): return "delete link \(name)"
        case .releaseFromBridge(let index): return "release link #\(index) from its bridge"
        case .closeDescriptor(let descriptor, let node): return "close descriptor \(descriptor.rawValue)" + (node.map { " and remove \($0)" } ?? "")
        }
    }
}

/// Something that could not be put back: what, and why.
package struct UndoProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was being put back, e.g. "restore MAC 02:… on link #5" or "add route default via 169.254.1.1".
    package var what: String
    package var cause: AttachCause
    package var description: String { "\(what): \(cause)" }

    /// "every change was undone" for no problems, else "undoing failed: …" listing each.
    package static func summary(_ problems: [UndoProblem], clean: String = "every change was undone") -> String {
        problems.isEmpty ? clean : "undoing failed: \(problems.map(\.description).joined(separator: "; "))"
    }
}

/// What the VM gets for one interface once it is attached.
package struct Attachment: Sendable {
    package var plan: InterfacePlan
    /// The macvtap device node or the tap, opened read-write once per queue (``InterfacePlan/queues``):
    /// QEMU's `-netdev tap,fd=` (one queue) or `fds=` (several).
    package var descriptors: [FileDescriptor]
    /// `/dev/vhost-net` once per queue, when it opened; empty otherwise.
    package var vhostDescriptors: [FileDescriptor]

    package init(plan: InterfacePlan, descriptors: [FileDescriptor], vhostDescriptors: [FileDescriptor]) {
        self.plan = plan
        self.descriptors = descriptors
        self.vhostDescriptors = vhostDescriptors
    }

    /// The first queue's descriptor (the only one with a single queue).
    package var descriptor: FileDescriptor { descriptors[0] }
    /// The first queue's `/dev/vhost-net`, when it opened.
    package var vhostDescriptor: FileDescriptor? { vhostDescriptors.first }
}

/// Attaching one interface failed; everything already done was undone (or ``rollbackProblems`` says what not).
package struct AttachError: Error, Sendable, CustomStringConvertible {
    package var interface: String
    package var step: AttachStep
    package var cause: AttachCause
    /// Undo steps that failed in turn (empty when the container is as it was).
    package var rollbackProblems: [UndoProblem]

    package var description: String {
        "cannot attach \(interface): \(step) failed: \(cause) (\(UndoProblem.summary(rollbackProblems)))"
    }
}

/// Applies an ``AttachPlan`` through ``NetlinkOperations``, recording an undo step for every
/// change, so a failure part-way or the end of the VM puts the container back as it was.
///
/// Not thread-safe: one attacher per launch, used from one task.
package final class Attacher {
    let netlink: any NetlinkOperations
    let devices: any TapDeviceOperations
    let logger: Logger
    /// Where private macvtap device nodes are made, opened and removed at once: this launcher's
    /// own run directory (`/run/kvm-launch/vm-…`), which the caller creates. Nothing else in it, or
    /// anywhere else, is cleaned up: another container may share `/run`.
    package let nodeDirectory: String
    /// Called after every completed step with its number (1-based); fault injection for tests.
    let afterStep: ((Int) -> Void)?
    private(set) var journal: [UndoStep] = []
    private var stepCount = 0
    /// ``releaseOwnLinks()`` ran (its problems wait in `releaseProblems` for ``teardown()``).
    private var ownLinksReleased = false
    /// ``releaseOwnLinks()`` deleted the link group (so the journal's own links should be gone).
    private var groupDeleted = false
    private var releaseProblems: [UndoProblem] = []

    package init(netlink: any NetlinkOperations, devices: any TapDeviceOperations = SystemTapDevices(),
                nodeDirectory: String, logger: Logger, afterStep: ((Int) -> Void)? = nil) {
        self.netlink = netlink
        self.devices = devices
        self.nodeDirectory = nodeDirectory
        self.logger = logger
        self.afterStep = afterStep
    }

    /// The attacher on a real socket and the real TAP devices.
    package convenience init(socket: NetlinkSocket, nodeDirectory: String, logger: Logger, afterStep: ((Int) -> Void)? = nil) {
        self.init(netlink: socket, devices: SystemTapDevices(), nodeDirectory: nodeDirectory, logger: logger, afterStep: afterStep)
    }

    // MARK: - Steps as values

    /// The steps attaching one interface takes, in order.
    package static func steps(for plan: InterfacePlan) -> [AttachStep] {
        var steps: [AttachStep] = [.recordIdentity(interface: plan.name)]
        if let address = plan.guestAddress { steps.append(.moveAddressOff(address, interface: plan.name)) }
        if let ipv6 = plan.ipv6, !ipv6.movedAddresses.isEmpty { steps.append(.moveIPv6AddressesOff(ipv6.movedAddresses, interface: plan.name)) }
        steps.append(.changeMAC(plan.containerMAC, interface: plan.name))
        if let swap = plan.linkLocalSwap, let replacement = swap.replacement, let new = replacement.address.ipv6 {
            steps.append(.swapLinkLocal(from: swap.original.compactMap { record in record.address.ipv6.map { IPv6Interface(address: $0, prefixLength: record.prefixLength) } },
                                        to: IPv6Interface(address: new, prefixLength: replacement.prefixLength), interface: plan.name))
        }
        let containerSide: [AttachStep] = [
            .createContainerSide(name: plan.containerSideName, bridge: plan.mode == .bridge, interface: plan.name),
            .addressContainerSide(name: plan.containerSideName, address: plan.containerSideAddress),
        ]
        switch plan.mode {
        case .macvtap:
            steps += [.createMacvtap(name: plan.vmLinkName, interface: plan.name), .bringUpMacvtap(name: plan.vmLinkName)]
            steps += containerSide
            steps.append(.openMacvtapDevice(name: plan.vmLinkName))
        case .bridge:
            let bridge = plan.bridgeName ?? plan.containerSideName
            steps += containerSide
            steps += [.addPort(interface: plan.name, bridge: bridge), .createTap(name: plan.vmLinkName),
                      .addTapToBridge(tap: plan.vmLinkName, bridge: bridge)]
        }
        return steps
    }

    /// Every step of a whole plan, interfaces in NIC order: what `KVM_LAUNCH_TEST_KILL_AFTER_STEP` counts.
    package static func steps(for plan: AttachPlan) -> [AttachStep] {
        plan.interfaces.flatMap { steps(for: $0) }
    }

    // MARK: - Recovery

    /// Puts back what a killed launcher left in this namespace (see ``RecoveryPlan``). Returns the
    /// names of restored interfaces; throws every problem at once after trying every step.
    @discardableResult
    package func recover(_ inventory: Inventory) throws(RecoveryError) -> [String] {
        try recover(RecoveryPlan(inventory))
    }

    /// Executes a recovery plan: every step is tried, in order, even after one fails; a link
    /// already gone or an address or route already there counts as done. Stale device nodes in
    /// ``nodeDirectory`` are removed too.
    @discardableResult
    package func recover(_ plan: RecoveryPlan) throws(RecoveryError) -> [String] {
        var problems: [UndoProblem] = []
        for step in plan.steps {
            do {
                try execute(step)
                logger.debug("recovery: \(step)")
            } catch {
                logger.error("recovery: could not \(step): \(error)")
                problems.append(UndoProblem(what: step.description, cause: .netlink(error)))
            }
        }
        devices.removeStaleNodes(in: nodeDirectory, prefix: LinkMarker.tapNamePrefix)
        if !problems.isEmpty { throw RecoveryError(problems: problems) }
        for name in plan.restoredInterfaces {
            logger.notice("restored \(name) from the state an earlier run recorded in its alias")
        }
        return plan.restoredInterfaces
    }

    private func execute(_ step: RestoreStep) throws(NetlinkError) {
        switch step {
        case .deleteLink(let index, _):
            do { try netlink.deleteLink(index: index) } catch where error.isNotFound { return }
        case .setMAC(let index, _, let mac):
            try netlink.changeLink(index: index, mac: mac)
        case .deleteAddress(_, let record):
            try ignoringNotFound { () throws(NetlinkError) in try netlink.deleteAddress(record) }
        case .addAddress(_, let record):
            try ignoringExists { () throws(NetlinkError) in try netlink.addAddress(record) }
        case .removeAddress(_, let record):
            try ignoringNotFound { () throws(NetlinkError) in try netlink.deleteAddress(record) }
        case .addRoute(_, let record):
            try ignoringExists { () throws(NetlinkError) in try netlink.addRoute(record) }
        case .setAlias(let index, _, let alias):
            try netlink.changeLink(index: index, alias: alias ?? "")
        }
    }

    // MARK: - Attach

    /// Attaches every planned interface, in order. All or nothing: on failure every change made so
    /// far is undone and the error names the interface, the step and the cause.
    package func apply(_ plan: AttachPlan) throws(AttachError) -> [Attachment] {
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

    /// Undoes every recorded step, most recent first, best effort: a step that fails does not stop
    /// the others. Returns what could not be undone.
    ///
    /// kvm-launch's own links and descriptors go first (``releaseOwnLinks()``, unless the caller did
    /// that already), then the container's interfaces get back what the attach changed.
    @discardableResult
    package func teardown() -> [UndoProblem] {
        let started = ContinuousClock.now
        let steps = journal.count
        releaseOwnLinks()
        var problems = releaseProblems
        releaseProblems = []
        defer { logger.debug("undid \(steps) steps in \(ContinuousClock.now - started)") }
        // After the group request, one dump says which of the journal's links are left (instead of
        // one lookup per link): one created outside the group (an attach that failed right after
        // creating it) is deleted now. Without the dump, each is looked up as before.
        var linksLeft: Set<String>?
        if groupDeleted, journal.contains(where: { if case .deleteLink = $0 { true } else { false } }) {
            linksLeft = (try? netlink.links()).map { Set($0.map(\.name)) }
        }
        groupDeleted = false
        while let step = journal.popLast() {
            if case .deleteLink(let name) = step, let linksLeft, !linksLeft.contains(name) {
                logger.debug("undone: \(step) (with its link group)")
                continue
            }
            let failed = undo(step)
            if failed.isEmpty {
                logger.debug("undone: \(step)")
            } else {
                for problem in failed { logger.error("could not \(problem)") }
                problems += failed
            }
        }
        ownLinksReleased = false  // the journal is empty: a later attach starts afresh
        return problems
    }

    /// Deletes kvm-launch's own links (one request for the link group: one kernel grace period instead
    /// of one per link) and closes its descriptors (each on its own thread, so their grace periods
    /// overlap), leaving the container's own interfaces as they are. Nothing the container had is put
    /// back yet, so a launcher may do this while its responders are still closing their sockets, and
    /// call ``teardown()`` once they are gone; `teardown()` reports what failed here too. Once only.
    ///
    /// The macvtap descriptors' closes start first and the group deletion runs while they wait: each
    /// takes the RTNL lock for a moment and then waits for a grace period, which then overlaps the
    /// deletion's instead of following it. A TAP's descriptors close after the deletion (closing them
    /// first would make the kernel unregister each TAP on its own, outside the one group request).
    @discardableResult
    package func releaseOwnLinks() -> [UndoProblem] {
        guard !ownLinksReleased else { return [] }
        ownLinksReleased = true
        var problems: [UndoProblem] = []
        let closing = journal.compactMap { step -> DeviceToClose? in
            if case .closeDescriptor(let descriptor, let node) = step { DeviceToClose(descriptor: descriptor, nodePath: node) } else { nil }
        }
        journal.removeAll { if case .closeDescriptor = $0 { true } else { false } }
        // A device node marks a macvtap queue; TAPs and vhost-net have none.
        let macvtaps = closing.filter { $0.nodePath != nil }
        let others = closing.filter { $0.nodePath == nil }
        let deletesLinks = journal.contains(where: { if case .deleteLink = $0 { true } else { false } })
        var results = devices.closeAll(macvtaps) {
            guard deletesLinks else { return }
            do throws(NetlinkError) {
                try netlink.deleteLinks(group: LinkMarker.linkGroup)
                groupDeleted = true
            } catch where error.isNotFound {
                // None in the group (yet): the journal's own steps delete what there is.
            } catch {
                logger.warning("could not delete kvm-launch's links at once (\(error)); deleting them one by one")
            }
        }
        results += others.isEmpty ? [] : devices.closeAll(others)
        for (item, error) in zip(macvtaps + others, results) {
            guard let error else { continue }
            let problem = UndoProblem(what: UndoStep.closeDescriptor(item.descriptor, nodePath: item.nodePath).description, cause: .device(error))
            logger.error("could not \(problem)")
            problems.append(problem)
        }
        releaseProblems += problems
        return problems
    }

    struct StepFailure: Error {
        var step: AttachStep
        var cause: AttachCause
    }

    /// Runs one step; the body records its undo as soon as the change is made.
    private func run<T>(_ step: AttachStep, _ body: () throws(AttachCause) -> T) throws(StepFailure) -> T {
        do {
            let result = try body()
            stepCount += 1
            logger.debug("step \(stepCount): \(step)")
            afterStep?(stepCount)
            return result
        } catch {
            throw StepFailure(step: step, cause: error)
        }
    }

    private func attach(_ plan: InterfacePlan) throws(StepFailure) -> Attachment {
        let (alias, dropped, droppedIPv6) = plan.identity.encoded()
        if dropped > 0 {
            logger.warning("\(plan.name): \(dropped) route(s) do not fit in the link alias; after a restart in the same namespace they are not restored")
        }
        if droppedIPv6 > 0 {
            logger.warning("\(plan.name): \(droppedIPv6) IPv6 address(es) do not fit in the link alias; after a restart in the same namespace they are not restored")
        }
        // Indexes of the links this attach creates: from the kernel's answer to the creating request
        // (NLM_F_ECHO), else looked up by name once.
        var vmLinkIndex: Int32?
        var containerSideIndex: Int32?
        var bridgeIndex: Int32?
        var descriptors: [FileDescriptor] = []
        for step in Self.steps(for: plan) {
            try run(step) { () throws(AttachCause) in
                switch step {
                case .recordIdentity:
                    try viaNetlink(netlink.changeLink(index: plan.index, alias: alias))
                    journal.append(.restoreAlias(index: plan.index, alias: plan.previousAlias))
                case .moveAddressOff(let guest, _):
                    guard let record = plan.identity.addressRecord(interfaceIndex: plan.index) else { return }
                    try viaNetlink(netlink.deleteAddress(record))
                    // The kernel deletes a primary's secondaries with it (promote_secondaries is off by
                    // default): the kept addresses in its subnet come back at once.
                    let secondaries = plan.keptAddresses.filter { $0.prefixLength == guest.prefixLength && guest.contains($0.address) }
                        .map { Self.addressRecord($0, index: plan.index) }
                    journal.append(.restoreAddress(record, routes: RouteOrder.dependencyOrdered(plan.routes.map { $0.record(interfaceIndex: plan.index) }),
                                                   secondaries: secondaries))
                    for secondary in secondaries {
                        try viaNetlink(ignoringExists { () throws(NetlinkError) in try netlink.addAddress(secondary) })
                    }
                case .moveIPv6AddressesOff:
                    // Each address is journalled as soon as it is off: a failure part-way restores those.
                    for record in plan.identity.ipv6AddressRecords(interfaceIndex: plan.index) {
                        try viaNetlink(netlink.deleteAddress(record))
                        journal.append(.restoreAddress(record, routes: [], secondaries: []))
                    }
                case .changeMAC(let mac, _):
                    try viaNetlink(netlink.changeLink(index: plan.index, mac: mac))
                    journal.append(.restoreMAC(index: plan.index, mac: plan.guestMAC))
                case .swapLinkLocal:
                    guard let swap = plan.linkLocalSwap, let replacement = swap.replacement else { return }
                    try viaNetlink(netlink.addAddress(replacement))
                    journal.append(.removeAddress(replacement))
                    for original in swap.original {
                        try viaNetlink(netlink.deleteAddress(original))
                        journal.append(.restoreAddress(original, routes: [], secondaries: []))
                    }
                case .createMacvtap(let name, _):
                    vmLinkIndex = try viaNetlink(netlink.addMacvlan(kind: .macvtap, name: name, parentIndex: plan.index, mac: plan.guestMAC, up: false,
                                                                    group: LinkMarker.linkGroup))
                    journal.append(.deleteLink(name: name))
                case .bringUpMacvtap(let name):
                    let index: Int32
                    if let known = vmLinkIndex { index = known } else { index = try lookUp(name).index }
                    try viaNetlink(netlink.changeLink(index: index, up: true, alias: LinkMarker.createdAlias))
                    vmLinkIndex = index
                case .createContainerSide(let name, let isBridge, _):
                    if isBridge {
                        containerSideIndex = try viaNetlink(netlink.addBridge(name: name, mac: MACAddress.randomLocal(), group: LinkMarker.linkGroup))
                    } else {
                        containerSideIndex = try viaNetlink(netlink.addMacvlan(kind: .macvlan, name: name, parentIndex: plan.index, mac: MACAddress.randomLocal(),
                                                                               up: false, group: LinkMarker.linkGroup))
                    }
                    journal.append(.deleteLink(name: name))
                case .addressContainerSide(let name, let address):
                    let index: Int32
                    if let known = containerSideIndex { index = known } else { index = try lookUp(name).index }
                    try viaNetlink(netlink.changeLink(index: index, up: true, alias: LinkMarker.createdAlias))
                    try viaNetlink(netlink.addAddress(Self.addressRecord(address, index: index)))
                    if plan.mode == .bridge { bridgeIndex = index }
                case .openMacvtapDevice(let name):
                    guard let vmLinkIndex else { throw .vanished(link: name) }
                    let node = "\(nodeDirectory)/\(name)"
                    let opened = try viaDevice(devices.openMacvtap(name: name, index: vmLinkIndex, nodePath: node, queues: plan.queues))
                    for queue in opened { journal.append(.closeDescriptor(queue, nodePath: node)) }
                    descriptors = opened
                case .addPort(_, let bridgeName):
                    guard let bridgeIndex else { throw .vanished(link: bridgeName) }
                    try viaNetlink(netlink.changeLink(index: plan.index, masterIndex: bridgeIndex))
                    journal.append(.releaseFromBridge(index: plan.index))
                case .createTap(let name):
                    let opened = try viaDevice(devices.openTap(named: name, queues: plan.queues))
                    for queue in opened { journal.append(.closeDescriptor(queue, nodePath: nil)) }
                    descriptors = opened
                case .addTapToBridge(let tapName, let bridgeName):
                    guard let bridgeIndex else { throw .vanished(link: bridgeName) }
                    let tap = try lookUp(tapName)
                    try viaNetlink(netlink.changeLink(index: tap.index, mtu: plan.mtu, alias: LinkMarker.createdAlias, masterIndex: bridgeIndex,
                                                      group: LinkMarker.linkGroup))
                    try viaNetlink(netlink.changeLink(index: tap.index, up: true))
                }
            }
        }
        guard !descriptors.isEmpty else { throw StepFailure(step: Self.steps(for: plan).last!, cause: .vanished(link: plan.vmLinkName)) }
        // vhost-net once per queue, or not at all (QEMU takes one per queue or none).
        var vhost: [FileDescriptor] = []
        for _ in descriptors {
            guard let opened = devices.openVhostNet() else { break }
            vhost.append(opened)
        }
        if vhost.count != descriptors.count {
            for opened in vhost { try? devices.close(opened, nodePath: nil) }
            vhost = []
        }
        for opened in vhost { journal.append(.closeDescriptor(opened, nodePath: nil)) }
        logger.info("attached \(plan.name): VM MAC \(plan.guestMAC)\(plan.guestAddress.map { ", VM address \($0)" } ?? ""), \(plan.mode.rawValue) \(plan.vmLinkName), container side \(plan.containerSideName) \(plan.containerSideAddress)")
        return Attachment(plan: plan, descriptors: descriptors, vhostDescriptors: vhost)
    }

    private func lookUp(_ name: String) throws(AttachCause) -> LinkRecord {
        guard let link = try viaNetlink(netlink.link(named: name)) else { throw .vanished(link: name) }
        return link
    }

    /// Undoes one journal step; returns what failed (a route that fails does not stop the next one).
    private func undo(_ step: UndoStep) -> [UndoProblem] {
        func attempt(_ what: String, _ body: () throws(AttachCause) -> Void) -> [UndoProblem] {
            do { try body(); return [] } catch { return [UndoProblem(what: what, cause: error)] }
        }
        switch step {
        case .restoreAlias(let index, let alias):
            return attempt(step.description) { () throws(AttachCause) in try viaNetlink(netlink.changeLink(index: index, alias: alias ?? "")) }
        case .restoreMAC(let index, let mac):
            return attempt(step.description) { () throws(AttachCause) in try viaNetlink(netlink.changeLink(index: index, mac: mac)) }
        case .restoreAddress(let address, let routes, let secondaries):
            var problems: [UndoProblem] = []
            for secondary in secondaries {
                problems += attempt("take \(secondary.cidr) off link #\(secondary.interfaceIndex) to re-add it after \(address.cidr)") { () throws(AttachCause) in
                    try viaNetlink(ignoringNotFound { () throws(NetlinkError) in try netlink.deleteAddress(secondary) })
                }
            }
            problems += attempt("restore address \(address.cidr) on link #\(address.interfaceIndex)") { () throws(AttachCause) in
                try viaNetlink(ignoringExists { () throws(NetlinkError) in try netlink.addAddress(address) })
            }
            for secondary in secondaries {
                problems += attempt("restore address \(secondary.cidr) on link #\(secondary.interfaceIndex)") { () throws(AttachCause) in
                    try viaNetlink(ignoringExists { () throws(NetlinkError) in try netlink.addAddress(secondary) })
                }
            }
            for route in RouteOrder.dependencyOrdered(routes) {
                problems += attempt("restore route \(RouteOrder.describe(route))") { () throws(AttachCause) in
                    try viaNetlink(ignoringExists { () throws(NetlinkError) in try netlink.addRoute(route) })
                }
            }
            return problems
        case .removeAddress(let address):
            return attempt(step.description) { () throws(AttachCause) in
                try viaNetlink(ignoringNotFound { () throws(NetlinkError) in try netlink.deleteAddress(address) })
            }
        case .deleteLink(let name):
            return attempt(step.description) { () throws(AttachCause) in
                if let link = try viaNetlink(netlink.link(named: name)) {
                    try viaNetlink(ignoringNotFound { () throws(NetlinkError) in try netlink.deleteLink(index: link.index) })
                }
            }
        case .releaseFromBridge(let index):
            return attempt(step.description) { () throws(AttachCause) in try viaNetlink(netlink.changeLink(index: index, masterIndex: 0)) }
        case .closeDescriptor(let descriptor, let node):
            return attempt(step.description) { () throws(AttachCause) in try viaDevice(devices.close(descriptor, nodePath: node)) }
        }
    }

    static func addressRecord(_ address: IPv4Interface, index: Int32) -> AddressRecord {
        AddressRecord(interfaceIndex: index, family: .inet, address: .v4(address.address), prefixLength: address.prefixLength)
    }
}

/// Every step of a recovery was tried; these failed.
package struct RecoveryError: Error, Sendable, Equatable, CustomStringConvertible {
    package var problems: [UndoProblem]
    package var description: String {
        "cannot restore what an earlier run left in this namespace: \(problems.map(\.description).joined(separator: "; ")); fix these by hand (ip link/addr/route) or delete the pod so it gets a fresh network namespace"
    }
}

/// Wraps a netlink call's error as an ``AttachCause``.
private func viaNetlink<T>(_ body: @autoclosure () throws(NetlinkError) -> T) throws(AttachCause) -> T {
    do { return try body() } catch { throw .netlink(error) }
}

/// Wraps a device call's error as an ``AttachCause``.
private func viaDevice<T>(_ body: @autoclosure () throws(TapDevices.Error) -> T) throws(AttachCause) -> T {
    do { return try body() } catch { throw .device(error) }
}

func ignoringExists(_ body: () throws(NetlinkError) -> Void) throws(NetlinkError) {
    do { try body() } catch where error.isExists { return }
}

func ignoringNotFound(_ body: () throws(NetlinkError) -> Void) throws(NetlinkError) {
    do { try body() } catch where error.isNotFound { return }
}
