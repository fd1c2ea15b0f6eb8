import CNetlink
import NetworkTypes
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs code with the calling thread inside another network namespace.
///
/// `setns(2)` with `CLONE_NEWNET` moves only the calling thread, and a socket stays in the
/// namespace it was created in, so the usual pattern is to open a ``NetlinkSocket`` (or any other
/// socket) inside ``run(inNamespaceAt:_:)`` and use it afterwards from anywhere. The body must not
/// suspend (it is synchronous), so it cannot hop threads half-way.
package enum NetworkNamespace {
    /// A namespace could not be entered or left.
    package struct Error: Swift.Error, CustomStringConvertible, Sendable {
        package var path: String
        package var errno: Errno
        package var description: String {
            "network namespace \(path): \(errno) (is it a namespace file such as /run/netns/NAME, and are you root?)"
        }
    }

    /// Enters the namespace at `path` (e.g. `/run/netns/test0` or `/proc/PID/ns/net`), runs `body`,
    /// and returns the thread to its own namespace.
    package static func run<T>(inNamespaceAt path: String, _ body: () throws -> T) throws -> T {
        let target = open(path, O_RDONLY | O_CLOEXEC)
        guard target >= 0 else { throw Error(path: path, errno: .current) }
        defer { close(target) }
        let own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard own >= 0 else { throw Error(path: "/proc/thread-self/ns/net", errno: .current) }
        defer { close(own) }
        guard cnetlink_enter_netns(target) == 0 else { throw Error(path: path, errno: .current) }
        defer {
            if cnetlink_enter_netns(own) != 0 {
                fatalError("cannot return to the original network namespace: \(Errno.current)")
            }
        }
        return try body()
    }
}
