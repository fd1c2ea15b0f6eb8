#if canImport(Glibc)
import Glibc
#endif
import NetworkTypes

/// Writes `text` to standard error (descriptor 2) at once, unbuffered, retrying short writes and
/// EINTR; gives up silently when standard error is closed (nothing else could report it).
func writeToStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = retryingOnInterrupt { bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) } }
        if written <= 0 { return }
        offset += written
    }
}
