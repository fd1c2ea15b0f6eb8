#if canImport(Glibc)
import Glibc
#endif
import NetworkTypes
import SystemPackage

/// Why the run directory cannot be used. Each description is one line that says what to do.
package enum RunDirectoryError: Error, Sendable, Equatable, CustomStringConvertible {
    case notAbsolute(String)
    case dotComponent(String)
    case symbolicLink(String)
    case notDirectory(String)
    case foreignOwner(path: String, owner: UInt32)
    case writableByOthers(path: String, mode: UInt32)
    case system(operation: String, path: String, errno: Errno)

    package var description: String {
        switch self {
        case .notAbsolute(let path):
            return "KVM_LAUNCH_RUN_DIR=\(path) is not an absolute path: give one such as /run/kvm-launch"
        case .dotComponent(let path):
            return "KVM_LAUNCH_RUN_DIR=\(path) contains '.' or '..': give the path without them"
        case .symbolicLink(let path):
            return "\(path) is a symbolic link: kvm-launch makes its run directory only through real directories; remove the link or set KVM_LAUNCH_RUN_DIR elsewhere"
        case .notDirectory(let path):
            return "\(path) exists and is not a directory: remove it or set KVM_LAUNCH_RUN_DIR elsewhere"
        case .foreignOwner(let path, let owner):
            return "\(path) belongs to user \(owner), not to kvm-launch's user: remove it or set KVM_LAUNCH_RUN_DIR elsewhere"
        case .writableByOthers(let path, let mode):
            return "\(path) is writable by other users (mode \(String(mode & 0o7777, radix: 8))): make it writable by its owner only or set KVM_LAUNCH_RUN_DIR elsewhere"
        case .system(let operation, let path, let code):
            return "cannot \(operation) \(path): \(code)"
        }
    }
}

/// This launcher's own directory under a run directory that other containers may share.
///
/// With `-v /var/run:/var/run` (the old container's documented command line) every container
/// shares the host's `/run`. So nothing under the base (`/run/kvm-launch`) is taken as this
/// launcher's by name: each launch makes `BASE/vm-<16 random hex digits>` with `mkdir` (which
/// fails rather than reuse an existing entry), mode 0700, and holds an exclusive `flock` on it
/// while it lives; ``remove()`` deletes it at teardown. No other launcher can pick the same
/// directory, and a directory whose lock is free belongs to a launcher that is gone.
///
/// The base is reached component by component from `/` with `O_NOFOLLOW`: a symbolic link
/// anywhere on the way, a component owned by another user than root or this user, or one others
/// may write to without the sticky bit (as `/tmp` has) is refused; the base itself must be this
/// user's and writable by it alone. A missing base (and missing parents) is created.
package final class RunDirectory: @unchecked Sendable {  // immutable after init; descriptors closed once in remove()
    /// The shared base (`/run/kvm-launch`).
    package let base: String
    /// This launcher's directory: `base/vm-…`.
    package let path: String
    /// The directory's name inside ``base``.
    package let name: String
    private var descriptor: Int32
    private var baseDescriptor: Int32

    /// The default base when `KVM_LAUNCH_RUN_DIR` is not set.
    package static let defaultBase = LaunchDefaults.runDirectory
    /// The prefix of every launcher's directory name.
    package static let namePrefix = "vm-"

    /// Checks that `base` is a path kvm-launch can make its directory under, without touching
    /// anything (for `--dry-run` and the checks before the first change). Pure.
    package static func validate(base: String) throws(RunDirectoryError) {
        guard base.hasPrefix("/") else { throw .notAbsolute(base) }
        let components = base.split(separator: "/")
        guard !components.contains(where: { $0 == "." || $0 == ".." }) else { throw .dotComponent(base) }
    }

    /// Makes a new directory of this launcher under `base` (created if missing) and locks it.
    package init(base: String) throws(RunDirectoryError) {
        try Self.validate(base: base)
        let baseFD = try Self.openBase(base)
        var made: (name: String, fd: Int32)?
        do throws(RunDirectoryError) {
            for _ in 0..<16 {
                if let result = try Self.makeLockedDirectory(in: baseFD, base: base) {
                    made = result
                    break
                }
            }
        } catch {
            close(baseFD)
            throw error
        }
        guard let made else {
            close(baseFD)
            throw .system(operation: "make a directory of its own in", path: base, errno: .fileExists)
        }
        self.base = base
        self.name = made.name
        self.path = (base == "/" ? "" : base) + "/" + made.name
        self.descriptor = made.fd
        self.baseDescriptor = baseFD
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
        if baseDescriptor >= 0 { close(baseDescriptor) }
    }

    /// Deletes the directory (and any device node still in it) and releases its lock. Idempotent.
    package func remove() {
        guard descriptor >= 0 else { return }
        Self.removeEntries(of: descriptor, onlyDeviceNodes: nil)
        unlinkat(baseDescriptor, name, AT_REMOVEDIR)
        close(descriptor)
        close(baseDescriptor)
        descriptor = -1
        baseDescriptor = -1
    }

    /// The one regular file a launcher writes here: the cloud-init seed disk with `VM_BACKEND=libvirt`.
    package static let seedFileName = "cloud-init-seed.iso"

    /// Writes `contents` into a new file `name` of this directory, read-only for its owner: created
    /// exclusively (an existing entry, a symbolic link included, is an error) relative to the
    /// directory's own descriptor, so never through a link. ``remove()`` deletes it. Returns its path.
    package func createFile(named name: String, contents: [UInt8]) throws(RunDirectoryError) -> String {
        let full = path + "/" + name
        guard !name.contains("/"), name != ".", name != ".." else { throw .system(operation: "write", path: full, errno: .invalidArgument) }
        let fd = openat(descriptor, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o400)
        guard fd >= 0 else { throw .system(operation: "create", path: full, errno: .current) }
        defer { close(fd) }
        var written = 0
        while written < contents.count {
            let count = retryingOnInterrupt { contents[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
            guard count > 0 else { throw .system(operation: "write", path: full, errno: count < 0 ? .current : .ioError) }
            written += count
        }
        return full
    }

    /// Removes the directories under `base` that launchers which are gone left behind (a launcher
    /// killed with SIGKILL): a `vm-…` directory of this user whose lock can be taken, holding
    /// nothing but device nodes whose names start with `deviceNodePrefix` (the launcher's tap names,
    /// `kltap…`: NetAttach's `LinkMarker.tapNamePrefix`) and the seed file (``seedFileName``). A
    /// directory another launcher holds is never touched, whichever container it runs in. Returns the names removed.
    package static func removeAbandoned(in base: String, deviceNodePrefix: String) -> [String] {
        let baseFD = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard baseFD >= 0 else { return [] }
        defer { close(baseFD) }
        var removed: [String] = []
        for entry in entries(of: baseFD) where isLauncherName(entry) {
            let fd = openat(baseFD, entry, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0, info.st_uid == geteuid(), flock(fd, LOCK_EX | LOCK_NB) == 0 else { continue }
            // Still the same directory under that name (not replaced since it was opened)?
            var named = stat()
            guard fstatat(baseFD, entry, &named, AT_SYMLINK_NOFOLLOW) == 0, named.st_ino == info.st_ino, named.st_dev == info.st_dev else { continue }
            guard removeEntries(of: fd, onlyDeviceNodes: deviceNodePrefix) else { continue }
            if unlinkat(baseFD, entry, AT_REMOVEDIR) == 0 { removed.append(entry) }
        }
        return removed
    }

    /// `vm-` followed by 16 lower-case hex digits: the only names ``removeAbandoned(in:)`` considers.
    package static func isLauncherName(_ name: String) -> Bool {
        guard name.hasPrefix(namePrefix) else { return false }
        let digits = name.dropFirst(namePrefix.count)
        return digits.count == 16 && digits.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
    }

    // MARK: - Internals

    /// Opens (creating what is missing) every component of `base` without following links.
    static func openBase(_ base: String) throws(RunDirectoryError) -> Int32 {
        var current = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard current >= 0 else { throw .system(operation: "open", path: "/", errno: .current) }
        var walked = ""
        let components = base.split(separator: "/").map(String.init)
        for (position, component) in components.enumerated() {
            walked += "/" + component
            let last = position == components.count - 1
            var next = openat(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 && Errno.current == .noSuchFileOrDirectory {
                if mkdirat(current, component, last ? 0o700 : 0o755) != 0 && Errno.current != .fileExists {
                    let code = Errno.current
                    close(current)
                    throw .system(operation: "create", path: walked, errno: code)
                }
                next = openat(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            if next < 0 {
                let code = Errno.current
                // O_NOFOLLOW on a link gives ELOOP; O_DIRECTORY on a link to a directory gives ENOTDIR.
                var info = stat()
                let isLink = fstatat(current, component, &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
                close(current)
                if isLink || code == .tooManySymbolicLinkLevels { throw .symbolicLink(walked) }
                if code == .notDirectory { throw .notDirectory(walked) }
                throw .system(operation: "open", path: walked, errno: code)
            }
            close(current)
            current = next
            var info = stat()
            guard fstat(current, &info) == 0 else {
                let code = Errno.current
                close(current)
                throw .system(operation: "inspect", path: walked, errno: code)
            }
            do throws(RunDirectoryError) {
                try checkOwnership(info, path: walked, isBase: last)
            } catch {
                close(current)
                throw error
            }
        }
        return current
    }

    /// A component may belong to root or to this user; others may write to it only with the
    /// sticky bit. The base itself must be this user's and writable by it alone.
    static func checkOwnership(_ info: stat, path: String, isBase: Bool, user: UInt32 = geteuid()) throws(RunDirectoryError) {
        let owner = UInt32(info.st_uid), mode = UInt32(info.st_mode)
        if isBase {
            guard owner == user else { throw .foreignOwner(path: path, owner: owner) }
            guard mode & 0o022 == 0 else { throw .writableByOthers(path: path, mode: mode) }
        } else {
            guard owner == 0 || owner == user else { throw .foreignOwner(path: path, owner: owner) }
            guard mode & 0o022 == 0 || mode & UInt32(S_ISVTX) != 0 else { throw .writableByOthers(path: path, mode: mode) }
        }
    }

    /// One attempt: a fresh random name, `mkdirat` (fails on any existing entry), open, lock, and
    /// check the name still names it. nil: try another name.
    static func makeLockedDirectory(in baseFD: Int32, base: String) throws(RunDirectoryError) -> (name: String, fd: Int32)? {
        var generator = SystemRandomNumberGenerator()
        let number = generator.next() as UInt64
        let hex = String(number, radix: 16)
        let name = namePrefix + String(repeating: "0", count: 16 - hex.count) + hex
        guard mkdirat(baseFD, name, 0o700) == 0 else {
            let code = Errno.current
            if code == .fileExists { return nil }
            throw .system(operation: "create a directory in", path: base, errno: code)
        }
        let fd = openat(baseFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }  // replaced or removed in between: another name
        // Another launcher's removeAbandoned may have taken the lock of the empty directory
        // between mkdir and here, and removed it: then the name no longer names this directory.
        var info = stat(), named = stat()
        guard flock(fd, LOCK_EX | LOCK_NB) == 0, fstat(fd, &info) == 0,
              fstatat(baseFD, name, &named, AT_SYMLINK_NOFOLLOW) == 0,
              named.st_ino == info.st_ino, named.st_dev == info.st_dev, info.st_uid == geteuid() else {
            close(fd)
            return nil
        }
        return (name, fd)
    }

    /// Removes the entries of a directory; with a prefix in `onlyDeviceNodes`, removes nothing and
    /// returns false when anything but non-directories named with that prefix and the seed file is there.
    @discardableResult
    static func removeEntries(of directoryFD: Int32, onlyDeviceNodes prefix: String?) -> Bool {
        let names = entries(of: directoryFD)
        if let prefix {
            for entry in names {
                var info = stat()
                guard entry.hasPrefix(prefix) || entry == seedFileName, fstatat(directoryFD, entry, &info, AT_SYMLINK_NOFOLLOW) == 0,
                      (info.st_mode & S_IFMT) != S_IFDIR else { return false }
            }
        }
        for entry in names { unlinkat(directoryFD, entry, 0) }
        return true
    }

    /// The names in a directory, without `.` and `..`.
    static func entries(of directoryFD: Int32) -> [String] {
        let copy = dup(directoryFD)
        guard copy >= 0, let stream = fdopendir(copy) else { return [] }
        defer { closedir(stream) }
        rewinddir(stream)
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
