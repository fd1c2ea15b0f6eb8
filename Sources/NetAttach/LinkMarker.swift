import Netlink

/// How kvm-launch recognises its own work in a namespace.
///
/// Everything lives in the namespace itself, so it survives a launcher killed with SIGKILL and a
/// Kubernetes container restart (same namespace, fresh filesystem), and is gone with the namespace
/// after a Docker restart — exactly the lifetime of the state it describes:
/// - a link kvm-launch created carries the alias ``createdAlias``;
/// - a taken-over interface carries its ``RecordedIdentity`` in its alias, written before anything
///   else is created for it, and the links made for it are named `kltapN`, `klsrvN`, `klbrN` after
///   its index N — so a link killed between its creation and its alias is still recognised.
public enum LinkMarker {
    /// Every alias kvm-launch writes starts with this.
    public static let prefix = "kvm-launch:"
    /// The alias of a link kvm-launch created (macvtap, macvlan, bridge, tap).
    public static let createdAlias = "kvm-launch:created"
    /// Name prefixes of created links; the interface index of the container interface follows.
    public static let namePrefixes = ["kltap", "klsrv", "klbr"]

    /// Whether kvm-launch created this link: by its alias, or by its name when the interface it
    /// was made for has a recorded identity.
    public static func isCreated(_ link: LinkRecord, in inventory: Inventory) -> Bool {
        if link.alias?.hasPrefix(createdAlias) ?? false { return true }
        guard let owner = ownerIndex(ofName: link.name), let interface = inventory.link(index: owner) else { return false }
        return RecordedIdentity.isRecorded(interface.alias)
    }

    /// The container interface index a created link's name refers to (`kltap7` → 7).
    static func ownerIndex(ofName name: String) -> Int32? {
        for prefix in namePrefixes where name.hasPrefix(prefix) {
            let digits = name.dropFirst(prefix.count)
            if !digits.isEmpty, digits.allSatisfy(\.isNumber) { return Int32(digits) }
        }
        return nil
    }
}
