import Netlink

/// How kvm-launch names and recognises its own work in a namespace: the one place its link names
/// are built and read back.
///
/// Everything lives in the namespace itself, so it survives a launcher killed with SIGKILL and a
/// Kubernetes container restart (same namespace, fresh filesystem), and is gone with the namespace
/// after a Docker restart — exactly the lifetime of the state it describes:
/// - a link kvm-launch created carries exactly the alias ``createdAlias`` (an alias that merely
///   starts with it, such as `kvm-launch:created-by-ops`, is someone else's);
/// - a taken-over interface carries its ``RecordedIdentity`` in its alias, written before anything
///   else is created for it, and the links made for it are named `kltapN`, `klsrvN`, `klbrN` after
///   its index N — so a link killed between its creation and its alias is still recognised.
package enum LinkMarker {
    /// Every alias kvm-launch writes starts with this.
    package static let prefix = "kvm-launch:"
    /// The alias of a link kvm-launch created (macvtap, macvlan, bridge, tap), exactly.
    package static let createdAlias = "kvm-launch:created"
    /// The VM's link (macvtap or tap) and its private device node: `kltapN`.
    package static let tapNamePrefix = "kltap"
    /// The container-side macvlan: `klsrvN`.
    package static let containerSideNamePrefix = "klsrv"
    /// The bridge in bridge mode: `klbrN`.
    package static let bridgeNamePrefix = "klbr"
    /// The link group (`IFLA_GROUP`) of every link kvm-launch creates, so the teardown deletes them
    /// all with one request ("kl" in ASCII, far from the small numbers operators give groups).
    package static let linkGroup: UInt32 = 0x6B6C
    /// Name prefixes of created links; the interface index of the container interface follows.
    package static let namePrefixes = [tapNamePrefix, containerSideNamePrefix, bridgeNamePrefix]

    /// The VM's link for the interface with index `index`.
    package static func tapName(for index: Int32) -> String { "\(tapNamePrefix)\(index)" }
    /// The container-side macvlan for the interface with index `index`.
    package static func containerSideName(for index: Int32) -> String { "\(containerSideNamePrefix)\(index)" }
    /// The bridge for the interface with index `index`.
    package static func bridgeName(for index: Int32) -> String { "\(bridgeNamePrefix)\(index)" }

    /// Whether kvm-launch created this link: by its exact alias, or by its name when the interface
    /// it was made for has a recorded identity.
    package static func isCreated(_ link: LinkRecord, in inventory: Inventory) -> Bool {
        if link.alias == createdAlias { return true }
        guard let owner = ownerIndex(ofName: link.name), let interface = inventory.link(index: owner) else { return false }
        return RecordedIdentity.isRecorded(interface.alias)
    }

    /// The container interface index a created link's name refers to (`kltap7` → 7).
    static func ownerIndex(ofName name: String) -> Int32? {
        for prefix in namePrefixes where name.hasPrefix(prefix) {
            let digits = name.dropFirst(prefix.count)
            if !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) { return Int32(digits) }
        }
        return nil
    }
}
