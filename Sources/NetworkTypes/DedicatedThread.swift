import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// Starts `body` on a new detached OS thread: the one way kvm-launch puts blocking work (a
/// receive loop, `waitpid`, a blocking RPC) on a thread of its own instead of a thread of the
/// Swift concurrency pool. `name` (cut to the kernel's 15 bytes) shows in `ps -L` and debuggers.
///
/// Returns `false`, without running `body`, when no thread could be created; a caller whose work
/// must happen anyway runs `body` itself then.
@discardableResult
package func startDetachedThread(named name: String? = nil, _ body: @escaping @Sendable () -> Void) -> Bool {
    let job = DetachedThreadJob(name: name, body: body)
    let context = Unmanaged.passRetained(job).toOpaque()
    var thread = pthread_t()
    let created = pthread_create(&thread, nil, { raw in
        let job = Unmanaged<DetachedThreadJob>.fromOpaque(raw!).takeRetainedValue()
        if let name = job.name { nameCurrentThread(name) }
        job.body()
        return nil
    }, context)
    guard created == 0 else {
        Unmanaged<DetachedThreadJob>.fromOpaque(context).release()
        return false
    }
    pthread_detach(thread)
    return true
}

/// Names the calling thread (what `ps -L` and debuggers show): the kernel's `comm` of this thread,
/// cut to its 15 bytes. Glibc's Swift module exports neither `pthread_setname_np` nor `prctl`
/// (variadic), so it is written where the kernel keeps it. Best effort: without `/proc` the thread
/// keeps its inherited name.
private func nameCurrentThread(_ name: String) {
    let descriptor = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return }
    defer { close(descriptor) }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
}

private final class DetachedThreadJob: Sendable {
    let name: String?
    let body: @Sendable () -> Void
    init(name: String?, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

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
            let run: @Sendable () -> Void = {
                do {
                    try body()
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            if !startDetachedThread(named: name, run) { run() }
        }
    } onCancel: {
        stop()
    }
}
