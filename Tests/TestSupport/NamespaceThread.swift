import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a new thread that has entered the network namespace at `path` (`/run/netns/NAME`),
/// and returns its result. Sockets keep the namespace they were made in, so this is how a test opens a
/// server's sockets inside a namespace while the test process itself stays where it is. The thread ends
/// with the body, so it never has to come back to the original namespace.
package func inNetworkNamespace<T: Sendable>(path: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                continuation.resume(throwing: FixtureFailure("open \(path): errno \(errno)"))
                return
            }
            let entered = enterNetworkNamespace(fd)
            close(fd)
            guard entered == 0 else {
                continuation.resume(throwing: FixtureFailure("setns \(path): errno \(errno)"))
                return
            }
            continuation.resume(with: Result(catching: body))
        }.start()
    }
}

/// ``inNetworkNamespace(path:_:)`` for a namespace named in /run/netns.
package func inNetworkNamespace<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await inNetworkNamespace(path: "/run/netns/\(name)", body)
}

extension TestNamespace {
    /// Runs `body` on a new thread inside this namespace (see ``inNetworkNamespace(path:_:)``).
    package func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await inNetworkNamespace(path: path, body)
    }
}

/// setns(fd, CLONE_NEWNET), found at run time: the Glibc module exports neither.
private func enterNetworkNamespace(_ fd: Int32) -> Int32 {
    typealias Function = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { return -1 }
    return unsafeBitCast(symbol, to: Function.self)(fd, 0x4000_0000)
}
