import Netlink

/// How kvm-launch recognises its own work in a namespace: a prefix in the link alias.
///
/// An alias lives in the network namespace, so it survives a launcher killed with SIGKILL and a
/// Kubernetes container restart (same namespace, fresh filesystem), and is gone with the
/// namespace after a Docker restart — exactly the lifetime of the state it describes.
public enum LinkMarker {
    /// Every alias kvm-launch writes starts with this.
    public static let prefix = "kvm-launch:"
    /// The alias of a link kvm-launch created (macvtap, macvlan, bridge, tap).
    public static let createdAlias = "kvm-launch:created"

    /// Whether kvm-launch created this link.
    public static func isCreated(_ link: LinkRecord) -> Bool {
        link.alias?.hasPrefix(createdAlias) ?? false
    }

    /// Whether this link carries kvm-launch state of any kind.
    public static func isMarked(_ link: LinkRecord) -> Bool {
        link.alias?.hasPrefix(prefix) ?? false
    }
}
