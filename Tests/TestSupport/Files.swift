import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A private temporary directory (mode 0700, made by `mkdtemp`), removed when the value is released,
/// also when a test fails. Its path is short, so unix socket paths inside stay below the 107-byte limit.
package final class TemporaryDirectory: Sendable {
    package let path: String

    package init() throws {
        var template = Array("/tmp/kl-\(uniqueSuffix())-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        path = String(cString: created)
    }

    /// The path of `name` inside the directory.
    package func file(_ name: String) -> String { "\(path)/\(name)" }

    /// Removes the directory now (a `defer { directory.remove() }` also keeps the value alive to there).
    package func remove() { try? FileManager.default.removeItem(atPath: path) }

    deinit { remove() }
}

/// A ``TemporaryDirectory`` for the duration of `body`, removed afterwards (also when it throws).
package func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    return try await body(directory.path)
}

/// Writes a test file through an O_CLOEXEC descriptor, making its folder first. Tests run in parallel
/// and spawn processes all the time; a child inheriting a descriptor still open for writing would make
/// executing the file fail with ETXTBSY ("Text file busy") for as long as that child lives.
package func writeFile(_ path: String, _ contents: String, executable: Bool = false) throws {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                            withIntermediateDirectories: true)
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, executable ? 0o755 : 0o644)
    guard fd >= 0 else { throw FixtureFailure("cannot create \(path): errno \(errno)") }
    defer { close(fd) }
    let bytes = Array(contents.utf8)
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    guard written == bytes.count else { throw FixtureFailure("cannot write \(path): errno \(errno)") }
}

/// The text of a file.
package func readFile(_ path: String) throws -> String {
    try String(contentsOfFile: path, encoding: .utf8)
}
