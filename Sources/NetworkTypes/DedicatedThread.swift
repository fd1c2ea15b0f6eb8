import Foundation

/// Runs `body`, a blocking receive loop, on a thread of its own and waits for it to end without
/// holding a cooperative-pool thread. Cancelling the waiting task calls `stop`, which must make
/// `body` return. Used by every responder that blocks in the kernel (DHCPv4, RA + DHCPv6, the DNS relay).
package func runOnDedicatedThread(
    named name: String,
    stop: @escaping @Sendable () -> Void,
    _ body: @escaping @Sendable () throws -> Void
) async throws {
    try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let thread = Thread {
                do {
                    try body()
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.name = name
            thread.start()
        }
    } onCancel: {
        stop()
    }
}
