import NetworkTypes
import SystemPackage
import Testing

/// The one EINTR retry loop and the one way to read `errno`.
@Suite struct SystemCallTests {
    /// A call cut short by a signal is made again; its first other result comes back, and it is made no more.
    @Test func interruptedCallIsMadeAgain() {
        var calls = 0
        let result = retryingOnInterrupt { () -> Int in
            calls += 1
            if calls < 3 {
                Errno.current = .interrupted
                return -1
            }
            return 42
        }
        #expect(result == 42 && calls == 3)
    }

    /// Any other failure is returned at once with its errno kept for the caller: `EAGAIN` ("no data
    /// yet") is the caller's to handle, never retried here.
    @Test func otherFailureReturnsAtOnceWithItsErrno() {
        for failure in [Errno.resourceTemporarilyUnavailable, .noSuchFileOrDirectory, .addressInUse] {
            var calls = 0
            let result = retryingOnInterrupt { () -> Int32 in
                calls += 1
                Errno.current = failure
                return -1
            }
            #expect(result == -1 && calls == 1)
            #expect(Errno.current == failure)
            #expect(Errno.current.isWouldBlock == (failure == .resourceTemporarilyUnavailable))
        }
    }

    /// The closure is evaluated afresh on each try, so a wait computes what is left of its deadline
    /// each time (the DNS relay's poll).
    @Test func eachTryComputesItsArgumentsAgain() {
        var remaining = [300, 120, 0]
        var seen: [Int] = []
        _ = retryingOnInterrupt { () -> Int in
            let timeout = remaining.removeFirst()
            seen.append(timeout)
            if timeout > 0 {
                Errno.current = .interrupted
                return -1
            }
            return 0
        }
        #expect(seen == [300, 120, 0])
    }

    /// `Errno.current` is the C `errno` a real system call left.
    @Test func currentIsWhatTheSystemCallLeft() {
        #expect(close(-1) == -1)
        #expect(Errno.current == .badFileDescriptor)
        #expect(Errno.current.description == "Bad file descriptor")
    }
}

#if canImport(Glibc)
import Glibc
#endif
