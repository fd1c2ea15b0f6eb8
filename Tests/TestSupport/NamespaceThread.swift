import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension TestNamespace {
    /// Runs `body` on a new thread that has entered this network namespace, and returns its
    /// result. Sockets keep the namespace they were made in, so this is how a test opens a server's
    /// sockets inside a namespace while the test process itself stays where it is.
    public func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let path = self.path
        return try await withCheckedThrowingContinuation { continuation in
            Thread {
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else {
                    continuation.resume(throwing: NamespaceThreadError(message: "open \(path): errno \(errno)"))
                    return
                }
                // The thread ends with the body, so it never has to come back to the original namespace.
                let entered = enterNetworkNamespace(fd)
                close(fd)
                guard entered == 0 else {
                    continuation.resume(throwing: NamespaceThreadError(message: "setns \(path): errno \(errno)"))
                    return
                }
                continuation.resume(with: Result { try body() })
            }.start()
        }
    }
}

struct NamespaceThreadError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// setns(fd, CLONE_NEWNET), found at run time: the Glibc module exports neither.
private func enterNetworkNamespace(_ fd: Int32) -> Int32 {
    typealias Function = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { return -1 }
    return unsafeBitCast(symbol, to: Function.self)(fd, 0x4000_0000)
}
