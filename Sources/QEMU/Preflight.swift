#if canImport(Glibc)
import Glibc
#endif

/// Something that must be fixed before QEMU can start. Each description is one
/// line that says what is wrong and what to do.
public enum PreflightError: Error, Equatable, CustomStringConvertible {
    case launcherNotFound(name: String, searchPath: String)
    case launcherNotExecutable(path: String)
    case imageMissing(candidates: [String])
    case imageNotAFile(path: String)
    case imageUnreadable(path: String, reason: String)
    case imageEmpty(path: String)
    case imageTooSmall(path: String, size: UInt64)
    case imageHeaderTruncated(path: String, format: DiskImageFormat)
    case imageHeaderCorrupt(path: String, format: DiskImageFormat, detail: String)

    public var description: String {
        switch self {
        case let .launcherNotFound(name, searchPath):
            "QEMU binary '\(name)' not found in PATH (\(searchPath)): install qemu-system-x86 or set LAUNCHER to the binary's full path"
        case let .launcherNotExecutable(path):
            "QEMU binary '\(path)' is not an executable file: fix its permissions or set LAUNCHER to another binary"
        case let .imageMissing(candidates):
            "no disk image at \(candidates.joined(separator: " or ")): mount your image there, e.g. -v /path/disk.qcow2:\(candidates.first ?? "/image/image.qcow2")"
        case let .imageNotAFile(path):
            "disk image '\(path)' is neither a regular file nor a block device: mount the image file itself, not a directory"
        case let .imageUnreadable(path, reason):
            "cannot read disk image '\(path)' (\(reason)): check the mount and its permissions"
        case let .imageEmpty(path):
            "disk image '\(path)' is empty (0 bytes): mount a real image, or create one with qemu-img create -f qcow2"
        case let .imageTooSmall(path, size):
            "disk image '\(path)' is only \(size) bytes, smaller than one 512-byte sector: the copy is probably truncated, copy the image again"
        case let .imageHeaderTruncated(path, format):
            "disk image '\(path)' starts like \(format) but its header is cut short: the copy is truncated, copy the image again"
        case let .imageHeaderCorrupt(path, format, detail):
            "disk image '\(path)' has a corrupt \(format) header (\(detail)): check it with qemu-img check, or restore it from a backup"
        }
    }
}

/// Checks done before QEMU is started, so a mistake gives a clear one-line error
/// instead of a QEMU failure deep in the console output.
public enum Preflight {
    /// The binary used when `LAUNCHER` is not set.
    public static let defaultLauncher = "qemu-system-x86_64"

    /// Resolves the QEMU binary to an absolute, executable path.
    ///
    /// - Parameters:
    ///   - launcher: `LAUNCHER` from the old container: a bare name searched in
    ///     `searchPath`, or a path (anything containing `/`) used as it is.
    ///     `nil` or empty means ``defaultLauncher``.
    ///   - searchPath: a `PATH`-style list of directories.
    public static func resolveLauncher(
        _ launcher: String? = nil,
        searchPath: String
    ) throws(PreflightError) -> String {
        let name = launcher.flatMap { $0.isEmpty ? nil : $0 } ?? defaultLauncher
        if name.contains("/") {
            guard isExecutableFile(name) else {
                if exists(name) { throw .launcherNotExecutable(path: name) }
                throw .launcherNotFound(name: name, searchPath: searchPath)
            }
            return name
        }
        for directory in searchPath.split(separator: ":", omittingEmptySubsequences: true) {
            let candidate = directory.hasSuffix("/") ? "\(directory)\(name)" : "\(directory)/\(name)"
            if isExecutableFile(candidate) { return candidate }
        }
        throw .launcherNotFound(name: name, searchPath: searchPath)
    }

    /// Finds the image among `candidates` and probes its format.
    public static func checkImage(
        candidates: [String] = DiskImage.defaultCandidates
    ) throws(PreflightError) -> DiskImage {
        let path = try DiskImage.locate(candidates: candidates)
        return try DiskImage.probe(path: path)
    }

    private static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    private static func isExecutableFile(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return false }
        return access(path, X_OK) == 0
    }
}
