#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NetworkTypes
import SystemPackage

/// The file-system boundary of render: read a file, replace it atomically.
///
/// A replacement is written to a temporary file next to the target, flushed,
/// given the target's mode and owner (or `newFileMode` for a new file), and
/// renamed over the target, so a reader sees the old or the new file, never a
/// partial one. A symbolic link (or anything but a regular file) at the target is
/// refused: nothing is read or written through it, and no owner or mode is taken from
/// what it points to.
package enum AtomicFile {
    /// Mode of files render creates: read-write owner, read group (they hold passwords).
    package static let defaultNewFileMode: mode_t = 0o640

    /// The file's text, nil when it does not exist.
    ///
    /// Opened with `O_NOFOLLOW` (a symbolic link is refused) and without blocking, so a FIFO
    /// or device put at the path is refused too instead of hanging the agent.
    package static func read(_ path: String) throws(AtomicFileError) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        if fd < 0 {
            let code = Errno.current
            if code == .noSuchFileOrDirectory { return nil }
            if code == .tooManySymbolicLinkLevels { throw .symbolicLink(path) }
            throw .failed(path, "cannot open", code)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .failed(path, "cannot inspect", .current) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .notRegularFile(path) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = retryingOnInterrupt { chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) } }
            if count < 0 {
                throw .failed(path, "cannot read", .current)
            }
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .notText(path) }
        return text
    }

    /// Replaces (or creates) `path` with `text`.
    package static func write(_ text: String, to path: String, newFileMode: mode_t = defaultNewFileMode) throws(AtomicFileError) {
        let directory = parentDirectory(of: path)
        var existing = stat()
        let exists: Bool
        // lstat: a link at the target is refused, never followed for its owner and mode.
        if lstat(path, &existing) == 0 {
            switch existing.st_mode & S_IFMT {
            case S_IFREG: exists = true
            case S_IFLNK: throw .symbolicLink(path)
            default: throw .notRegularFile(path)
            }
        } else if Errno.current == .noSuchFileOrDirectory {
            exists = false
            var directoryInfo = stat()
            guard stat(directory, &directoryInfo) == 0, (directoryInfo.st_mode & S_IFMT) == S_IFDIR else {
                throw .noDirectory(directory)
            }
        } else {
            throw .failed(path, "cannot inspect", .current)
        }

        let temporary = directory + "/." + baseName(of: path) + ".tmp-" + randomSuffix()
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .failed(temporary, "cannot create", .current) }
        var done = false
        defer {
            if !done { unlink(temporary) }
        }
        try fill(fd, temporary: temporary, target: path, with: text, existing: exists ? existing : nil, newFileMode: newFileMode)
        guard rename(temporary, path) == 0 else { throw .failed(path, "cannot replace", .current) }
        done = true
        // Make the rename itself durable; failure here does not undo it.
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// Writes, sets mode and owner, flushes and closes the temporary file.
    private static func fill(
        _ fd: Int32,
        temporary: String,
        target: String,
        with text: String,
        existing: stat?,
        newFileMode: mode_t
    ) throws(AtomicFileError) {
        defer { close(fd) }
        try writeAll(Array(text.utf8), to: fd, path: temporary)
        let mode = existing.map { $0.st_mode & 0o7777 } ?? newFileMode
        guard fchmod(fd, mode) == 0 else { throw .failed(temporary, "cannot set mode of", .current) }
        if let existing, existing.st_uid != geteuid() || existing.st_gid != getegid() {
            guard fchown(fd, existing.st_uid, existing.st_gid) == 0 else {
                throw .ownerNotKept(target, uid: existing.st_uid, gid: existing.st_gid)
            }
        }
        guard fsync(fd) == 0 else { throw .failed(temporary, "cannot flush", .current) }
    }

    private static func writeAll(_ bytes: [UInt8], to fd: Int32, path: String) throws(AtomicFileError) {
        var offset = 0
        while offset < bytes.count {
            let written = retryingOnInterrupt {
                bytes.withUnsafeBytes { buffer in
                    systemWrite(fd, buffer.baseAddress! + offset, buffer.count - offset)
                }
            }
            if written < 0 {
                throw .failed(path, "cannot write", .current)
            }
            offset += written
        }
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func baseName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    private static func randomSuffix() -> String {
        String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }
}

// The C functions, named apart from the Swift methods of the same name.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}

private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}

/// A file that cannot be read or replaced.
package enum AtomicFileError: Error, Sendable, Hashable, CustomStringConvertible {
    case failed(String, String, Errno)
    case notText(String)
    case noDirectory(String)
    case ownerNotKept(String, uid: uid_t, gid: gid_t)
    /// A symbolic link at the path: render never writes through one.
    case symbolicLink(String)
    /// Something other than a regular file (directory, FIFO, device, socket) at the path.
    case notRegularFile(String)

    package var description: String {
        switch self {
        case .failed(let path, let action, let code):
            "\(action) \(path): \(code)"
        case .notText(let path):
            "\(path) is not UTF-8 text; refusing to merge into it"
        case .noDirectory(let directory):
            "directory \(directory) does not exist; create it first"
        case .ownerNotKept(let path, let uid, let gid):
            "cannot keep owner \(uid):\(gid) of \(path) (needs root); run as root or as that user"
        case .symbolicLink(let path):
            "\(path) is a symbolic link; refusing to read or write through it (remove the link: render writes a regular file there)"
        case .notRegularFile(let path):
            "\(path) is not a regular file; refusing to render into it (remove it or choose another directory)"
        }
    }
}
