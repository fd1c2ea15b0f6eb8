import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `CAP_NET_BIND_SERVICE` and `CAP_NET_RAW` (linux/capability.h): what the responders need to bind port 67/53
/// and open packet sockets.
package let capabilityNetBindService: Int32 = 10
package let capabilityNetRaw: Int32 = 13

/// Runs `body` on a new thread whose effective capabilities lack `dropped`, and returns its result.
/// Capabilities belong to a thread on Linux, so the test process and its other threads keep theirs, and
/// the thread ends with the body. This is how a test makes a system call fail the way it fails in an
/// unprivileged container (`EACCES` binding port 67, `EPERM` opening a packet socket), as root or not.
package func withoutCapabilities<T: Sendable>(_ dropped: [Int32], _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            // struct __user_cap_header_struct { u32 version; int pid; } and, for version 3, two
            // struct __user_cap_data_struct { u32 effective, permitted, inheritable; } (bits 0-31, 32-63).
            var header: [UInt32] = [0x2008_0522, 0]
            var data = [UInt32](repeating: 0, count: 6)
            guard let get = capabilityCall("capget"), let set = capabilityCall("capset"),
                  get(&header, &data) == 0 else {
                continuation.resume(throwing: FixtureFailure("capget: errno \(errno)"))
                return
            }
            for capability in dropped {
                data[Int(capability / 32) * 3] &= ~(UInt32(1) << UInt32(capability % 32))
            }
            guard set(&header, &data) == 0 else {
                continuation.resume(throwing: FixtureFailure("capset: errno \(errno)"))
                return
            }
            continuation.resume(with: Result(catching: body))
        }.start()
    }
}

/// The error `body` throws on a thread without the `dropped` capabilities; nil when it throws none.
package func failure<Failure: Error>(withoutCapabilities dropped: [Int32], _ body: @escaping @Sendable () throws(Failure) -> Void) async throws -> Failure? {
    try await withoutCapabilities(dropped) { () -> Failure? in
        do throws(Failure) {
            try body()
            return nil
        } catch {
            return error
        }
    }
}

/// capget/capset, found at run time: the Glibc module declares neither.
private func capabilityCall(_ name: String) -> (@convention(c) (UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Int32)? {
    typealias Function = @convention(c) (UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
    return unsafeBitCast(symbol, to: Function.self)
}
