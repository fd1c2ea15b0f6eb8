import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The process's file-descriptor table, grown once ahead of need.
///
/// The kernel grows a process's table by doubling it (64, 128, 256, 512 … slots) as descriptors are
/// opened, and in a multi-threaded process every growth waits for an RCU grace period (`expand_fdtable`:
/// ~10 ms on a loaded machine). A launch with many interfaces opens several descriptors per interface
/// (the macvtap or TAP queues, vhost-net, the DHCP server's and the DNS relay's sockets, wake-up pipes)
/// and would pay that wait two or three times in the middle of its setup. ``reserve(slots:)`` grows the
/// table to its final size at once: one wait at most. Tables never shrink; nothing else changes.
package enum DescriptorTable {
    /// The slots a launch with `interfaces` interfaces of `queues` queues each is expected to use: the
    /// launcher's own (~16) and, per interface, one descriptor per queue for its device and one for
    /// vhost-net, plus the responders' sockets and pipes (5). Measured: 18 with one interface, 397 with
    /// 64 (one queue, no vhost-net). An overestimate costs 8 bytes a slot.
    package static func slots(interfaces: Int, queues: Int) -> Int {
        16 + interfaces * (5 + 2 * max(queues, 1))
    }

    /// Grows the table so descriptors below `slots` open without growing it again. Best effort: returns
    /// false (nothing changed) when the limit on open files (`RLIMIT_NOFILE`) is lower or the kernel
    /// refuses; the table then grows on demand as before. The default table (64) is never touched.
    @discardableResult
    package static func reserve(slots: Int) -> Bool {
        guard slots > 64 else { return true }
        // Any open descriptor duplicated to `slots - 1` (the lowest free one at or above it) makes the
        // kernel size the table for it; the copy is closed at once.
        let anchor = open("/", O_RDONLY | O_CLOEXEC | O_DIRECTORY)
        guard anchor >= 0 else { return false }
        defer { close(anchor) }
        let high = fcntl(anchor, F_DUPFD_CLOEXEC, Int32(clamping: slots - 1))
        guard high >= 0 else { return false }
        close(high)
        return true
    }
}
