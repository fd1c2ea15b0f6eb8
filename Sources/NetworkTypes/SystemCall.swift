#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Makes the system call `call` again for as long as it fails with `EINTR` (a signal arrived
/// before it could finish) and returns its first other result: the one retry loop kvm-launch
/// has for blocking calls (`read`, `write`, `poll`, `waitpid`, …). A failure other than `EINTR`
/// is returned as it is (a negative result, with `errno` still set) for the caller to handle.
package func retryingOnInterrupt<Value: BinaryInteger>(_ call: () -> Value) -> Value {
    while true {
        let result = call()
        if result < 0 && errno == EINTR { continue }
        return result
    }
}
