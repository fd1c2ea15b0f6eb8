#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a new detached OS thread. Used for the few loops that must
/// block in a system call (waitpid, read on the signal pipe) without tying up a
/// thread of the Swift concurrency pool.
func startDetachedThread(_ body: @escaping @Sendable () -> Void) {
    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { raw in
        let body = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
        body.run()
        return nil
    }, context)
    if result != 0 {
        // No thread could be created: run inline rather than lose the work.
        Unmanaged<ThreadBody>.fromOpaque(context).takeRetainedValue().run()
        return
    }
    pthread_detach(thread)
}

private final class ThreadBody: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}
