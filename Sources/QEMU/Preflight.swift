#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Something that must be fixed before QEMU can start. Each description is one
/// line that says what is wrong and what to do.
package enum PreflightError: Error, Equatable, CustomStringConvertible {
    case launcherNotFound(name: String, searchPath: String)
    case launcherNotExecutable(path: String)
    /// `LAUNCHER` is a path and nothing is there.
    case launcherMissing(path: String)
    case imageMissing(candidates: [String])
    /// More guest memory than this machine has (memory plus swap, MiB).
    case memoryBeyondMachine(requested: Int, available: Int)
    /// A FIFO, socket, directory or character device: only regular files and block devices are disks.
    case imageNotAFile(path: String, kind: String)
    /// Opening or reading it failed; `forWriting`: it was opened for writing (QEMU writes to the disk).
    case imageUnreadable(path: String, errno: Errno, forWriting: Bool = false)
    case imageEmpty(path: String)
    case imageTooSmall(path: String, size: UInt64)
    case imageHeaderTruncated(path: String, format: DiskImageFormat)
    case imageHeaderCorrupt(path: String, format: DiskImageFormat, detail: String)
    /// The format stated (`VM_IMAGE_FORMAT`, or the file name when `stated` is false) is not what the header shows.
    case imageFormatMismatch(path: String, expected: DiskImageFormat, found: DiskImageFormat, stated: Bool)
    /// A file whose name states no format has a non-raw header, which a raw disk's guest could have written.
    case imageFormatNotStated(path: String, found: DiskImageFormat)
    /// A backing or data file resolves outside the image's folder.
    case imageReferenceOutside(path: String, role: String, reference: String, resolved: String, folder: String)
    /// A backing, data or extent file that cannot be used (missing, not a file, a loop, an unsupported kind).
    case imageReferenceUnusable(path: String, role: String, reference: String, reason: String)

    init(_ error: DiskImageProbe.ProbeError, path: String) {
        switch error {
        case .empty: self = .imageEmpty(path: path)
        case let .tooSmall(size): self = .imageTooSmall(path: path, size: size)
        case let .truncatedHeader(format): self = .imageHeaderTruncated(path: path, format: format)
        case let .corruptHeader(format, detail): self = .imageHeaderCorrupt(path: path, format: format, detail: detail)
        }
    }

    private static func unreadableReason(_ errno: Errno, forWriting: Bool) -> String {
        forWriting ? "\(errno) when opening it for writing; QEMU writes to the disk" : errno.description
    }

    /// A short reason for a referenced file that cannot be opened.
    var shortReason: String {
        switch self {
        case .imageMissing: "it does not exist"
        case let .imageNotAFile(_, kind): "it is \(kind), not a regular file or block device"
        case let .imageUnreadable(_, errno, forWriting): Self.unreadableReason(errno, forWriting: forWriting)
        default: description
        }
    }

    package var description: String {
        switch self {
        case let .launcherNotFound(name, searchPath):
            "QEMU binary '\(name)' not found in PATH (\(searchPath)): install qemu-system-x86 or set LAUNCHER to the binary's full path"
        case let .launcherNotExecutable(path):
            "QEMU binary '\(path)' is not an executable file: fix its permissions or set LAUNCHER to another binary"
        case let .launcherMissing(path):
            "QEMU binary '\(path)' (LAUNCHER) does not exist (no such file): install QEMU there or set LAUNCHER to the binary's full path"
        case let .memoryBeyondMachine(requested, available):
            "VM_MEMORY asks for \(requested) MiB but this machine has \(available) MiB of memory and swap, so QEMU could not allocate it: give the guest less memory"
        case let .imageMissing(candidates):
            "no disk image at \(candidates.joined(separator: " or ")): mount your image there, e.g. -v /path/disk.qcow2:\(candidates.first ?? "/image/image.qcow2")"
        case let .imageNotAFile(path, kind):
            "disk image '\(path)' is \(kind), not a regular file or block device: mount the image file itself"
        case let .imageUnreadable(path, errno, forWriting):
            "cannot read disk image '\(path)' (\(Self.unreadableReason(errno, forWriting: forWriting))): check the mount and its permissions"
        case let .imageEmpty(path):
            "disk image '\(path)' is empty (0 bytes): mount a real image, or create one with qemu-img create -f qcow2"
        case let .imageTooSmall(path, size):
            "disk image '\(path)' is only \(size) bytes, smaller than one 512-byte sector: the copy is probably truncated, copy the image again"
        case let .imageHeaderTruncated(path, format):
            "disk image '\(path)' starts like \(format) but its header is cut short: the copy is truncated, copy the image again"
        case let .imageHeaderCorrupt(path, format, detail):
            "disk image '\(path)' has a corrupt \(format) header (\(detail)): check it with qemu-img check, or restore it from a backup"
        case let .imageFormatMismatch(path, expected, found, stated):
            stated
                ? "disk image '\(path)' is not \(expected) as stated (its header shows \(found == .raw ? "no known format" : found.rawValue)): set VM_IMAGE_FORMAT to the image's real format, or mount the right image"
                : "disk image '\(path)' is named .\(path.split(separator: ".").last ?? "") but is not \(expected) (its header shows \(found == .raw ? "no known format" : found.rawValue)), and it is not booted as raw: mount a real \(expected) image, or set VM_IMAGE_FORMAT to its real format"
        case let .imageFormatNotStated(path, found):
            "disk image '\(path)' has a \(found) header but its name states no format, and a raw disk's guest can write such a header: set VM_IMAGE_FORMAT=\(found) if it is a \(found) image (or VM_IMAGE_FORMAT=raw), or name it *.\(found == .vpc ? "vhd" : found.rawValue)"
        case let .imageReferenceOutside(path, role, reference, resolved, folder):
            "disk image '\(path)' names the \(role) '\(reference)', which is \(resolved), outside the image's folder \(folder): put the \(role) next to the image, or set VM_IMAGE_BACKING=allow to let it point anywhere"
        case let .imageReferenceUnusable(path, role, reference, reason):
            "disk image '\(path)' names the \(role) '\(reference)', which cannot be used: \(reason)"
        }
    }
}

/// Checks done before QEMU is started, so a mistake gives a clear one-line error
/// instead of a QEMU failure deep in the console output.
package enum Preflight {
    /// The binary used when `LAUNCHER` is not set.
    package static let defaultLauncher = "qemu-system-x86_64"

    /// Resolves the QEMU binary to an absolute, executable path.
    ///
    /// - Parameters:
    ///   - launcher: `LAUNCHER` from the old container: a bare name searched in
    ///     `searchPath`, or a path (anything containing `/`) used as it is.
    ///     `nil` or empty means ``defaultLauncher``.
    ///   - searchPath: a `PATH`-style list of directories.
    package static func resolveLauncher(
        _ launcher: String? = nil,
        searchPath: String
    ) throws(PreflightError) -> String {
        let name = launcher.flatMap { $0.isEmpty ? nil : $0 } ?? defaultLauncher
        if name.contains("/") {
            guard isExecutableFile(name) else {
                if exists(name) { throw .launcherNotExecutable(path: name) }
                throw .launcherMissing(path: name)
            }
            return name
        }
        for directory in searchPath.split(separator: ":", omittingEmptySubsequences: true) {
            let candidate = directory.hasSuffix("/") ? "\(directory)\(name)" : "\(directory)/\(name)"
            if isExecutableFile(candidate) { return candidate }
        }
        throw .launcherNotFound(name: name, searchPath: searchPath)
    }

    /// Finds the image (`path`, else the first of `candidates` that exists), opens and checks it
    /// and every file it names under `policy` (see ``DiskImage/open(path:policy:)``).
    package static func checkImage(
        path: String? = nil,
        candidates: [String] = DiskImage.defaultCandidates,
        policy: DiskImagePolicy = DiskImagePolicy()
    ) throws(PreflightError) -> OpenedDiskImage {
        let located: String
        if let path { located = path } else { located = try DiskImage.locate(candidates: candidates) }
        return try DiskImage.open(path: located, policy: policy)
    }

    /// Checks that `memoryMiB` of guest memory fits this machine: QEMU cannot allocate more than the
    /// kernel's memory and swap (it fails after the network was taken over otherwise).
    package static func checkMemory(_ memoryMiB: Int, meminfoPath: String = "/proc/meminfo") throws(PreflightError) {
        guard let text = readSmallTextFile(meminfoPath) else { return }
        var total = 0
        for line in text.split(separator: "\n") where line.hasPrefix("MemTotal:") || line.hasPrefix("SwapTotal:") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kib = Int(fields[1]) { total += kib / 1024 }
        }
        guard total > 0 else { return }
        if memoryMiB > total { throw .memoryBeyondMachine(requested: memoryMiB, available: total) }
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
