#if canImport(Glibc)
import Glibc
#endif

/// The QMP socket of this container's QEMU: an abstract unix socket named after the PID
/// namespace, `@kvm-launch/qmp/pidns-<inode>`.
///
/// Abstract socket names belong to a network namespace, so another container (with its own
/// network namespace) can neither see nor replace it, whatever it shares of the file system.
/// The PID namespace in the name keeps two containers apart that share one network namespace
/// (`--net=host`, the containers of one Kubernetes pod). `kvm-launch status` run by
/// `docker exec` or a Kubernetes probe enters both namespaces of the container, so it computes
/// the same name; two launchers in the same network *and* PID namespaces get the same name, and
/// the second refuses to start (see the launcher's check before the first change).
package enum QMPSocketName {
    /// `@kvm-launch/qmp/pidns-<inode>`, the form `QMPAddress` reads as abstract.
    package static func forPIDNamespace(_ inode: UInt64) -> String {
        "@kvm-launch/qmp/pidns-\(inode)"
    }

    /// The name for the calling process's PID namespace, or nil when `/proc` cannot tell it.
    package static func current(procfs: String = "/proc") -> String? {
        Namespaces.inode(of: "pid", procfs: procfs).map(forPIDNamespace)
    }
}

/// The namespaces the calling process is in, by the inode of `/proc/self/ns/KIND`.
package enum Namespaces {
    /// The inode of `/proc/self/ns/<kind>` (`pid`, `net`, `mnt`), nil when it cannot be read.
    package static func inode(of kind: String, procfs: String = "/proc") -> UInt64? {
        var info = stat()
        guard stat("\(procfs)/self/ns/\(kind)", &info) == 0 else { return nil }
        return UInt64(info.st_ino)
    }
}
