import NetworkTypes
import Supervisor
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `Supervisor.blockBrokenPipeSignal()`: the launcher's threads write to sockets and pipes whose reader
/// may be gone (libvirtd's RPC socket as it stops); with SIGPIPE blocked that write fails with EPIPE. Without
/// it the test runner itself would end by SIGPIPE.
@Suite struct BrokenPipeTests {
    @Test func aWriteToAPipeWithoutReaderFailsWithEPIPE() async {
        let error: Int32 = await withCheckedContinuation { continuation in
            // A thread of its own: the mask it changes is that thread's only.
            let started = startDetachedThread(named: "test-sigpipe") {
                Supervisor.blockBrokenPipeSignal()
                var ends: [Int32] = [-1, -1]
                guard pipe(&ends) == 0 else { return continuation.resume(returning: -1) }
                close(ends[0])
                var byte: UInt8 = 1
                let written = write(ends[1], &byte, 1)
                let error = written < 0 ? errno : 0
                close(ends[1])
                continuation.resume(returning: error)
            }
            if !started { continuation.resume(returning: -1) }
        }
        #expect(error == EPIPE, "the write failed with EPIPE, and the process lives on")
    }
}
