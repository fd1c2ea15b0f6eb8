import Libvirt
import NetworkTypes

#if canImport(Glibc)
import Glibc
#endif

/// The guest's serial console as the container's stdio: bytes from the console stream go to
/// stdout, stdin goes to the console. When stdin is a terminal it is put in the same mode QEMU's
/// `-chardev stdio,signal=off` uses (raw, no echo, no signals: Ctrl-C is a byte for the guest)
/// and restored by ``finish()``.
final class ConsoleBridge: @unchecked Sendable {  // `savedTerminal` is written once before the threads start
    private let stream: Stream
    private var savedTerminal: termios?

    init(stream: Stream) {
        self.stream = stream
    }

    func start() {
        if isatty(0) == 1 {
            var mode = termios()
            if tcgetattr(0, &mode) == 0 {
                savedTerminal = mode
                mode.c_iflag &= ~tcflag_t(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON)
                mode.c_oflag |= tcflag_t(OPOST)
                mode.c_lflag &= ~tcflag_t(ECHO | ECHONL | ICANON | IEXTEN | ISIG)
                mode.c_cflag &= ~tcflag_t(CSIZE | PARENB)
                mode.c_cflag |= tcflag_t(CS8)
                withUnsafeMutableBytes(of: &mode.c_cc) { bytes in
                    bytes[Int(VMIN)] = 1
                    bytes[Int(VTIME)] = 0
                }
                tcsetattr(0, TCSANOW, &mode)
            }
        }
        let stream = self.stream
        startDetachedThread(named: "console-out") {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = (try? buffer.withUnsafeMutableBytes { try stream.receive(into: $0) }) ?? 0
                if count <= 0 { return }
                var offset = 0
                while offset < count {
                    let written = retryingOnInterrupt { buffer[offset..<count].withUnsafeBytes { write(1, $0.baseAddress, $0.count) } }
                    if written < 0 { return }
                    offset += written
                }
            }
        }
        startDetachedThread(named: "console-in") {
            var buffer = [UInt8](repeating: 0, count: 1024)
            while true {
                let count = retryingOnInterrupt { buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) } }
                if count <= 0 { return }  // stdin closed (e.g. /dev/null): the console stays output-only
                do {
                    try buffer[0..<count].withUnsafeBytes { try stream.send($0) }
                } catch {
                    return
                }
            }
        }
    }

    /// Ends the console and gives the terminal back its mode.
    func finish() {
        stream.abort()
        if var mode = savedTerminal { tcsetattr(0, TCSANOW, &mode) }
    }
}

/// Runs a blocking libvirt call on a thread of its own, so a slow RPC (libvirtd waiting for a
/// domain job, QEMU starting) never holds one of Swift's few cooperative threads.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let job: @Sendable () -> Void = { continuation.resume(with: Result { try body() }) }
        if !startDetachedThread(named: "libvirt-call", job) { job() }
    }
}
