import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Makes the system call `call` again for as long as it fails with `EINTR` (a signal arrived
/// before it could finish) and returns its first other result: the one retry loop kvm-launch
/// has for blocking calls (`read`, `write`, `poll`, `waitpid`, `recv`, …). A failure other than
/// `EINTR` is returned as it is (a negative result, with ``SystemPackage/Errno/current`` still
/// telling why) for the caller to handle.
///
/// `call` is made afresh on each try, so a call with a deadline computes what is left of it
/// inside the closure (`retryingOnInterrupt { poll(&fds, count, remainingMilliseconds()) }`) and an
/// interrupted wait never starts its full timeout again.
package func retryingOnInterrupt<Value: BinaryInteger>(_ call: () -> Value) -> Value {
    while true {
        let result = call()
        if result < 0 && Errno.current == .interrupted { continue }
        return result
    }
}

extension Errno {
    /// The calling thread's `errno` now, as an `Errno`: the one place kvm-launch reads the C global.
    /// Read it right after the failed call, before anything else that may change it (`close`, logging).
    /// Set, it puts a saved value back (after cleanup calls that may have changed it).
    package static var current: Errno {
        get { Errno(rawValue: errno) }
        set { errno = newValue.rawValue }
    }

    /// `EAGAIN` / `EWOULDBLOCK`: a non-blocking call found nothing to do ("no data yet"), not a failure.
    package var isWouldBlock: Bool { self == .resourceTemporarilyUnavailable || self == .wouldBlock }
}
