#if canImport(Glibc)
import Glibc
#endif

/// The on-disk formats QEMU is told about explicitly (`format=` on `-drive`).
///
/// Stating the format stops QEMU from guessing it, which matters for raw images:
/// a guest could otherwise write a qcow2 header into its own raw disk and, on the
/// next boot, have QEMU follow a backing-file path of its choosing.
public enum DiskImageFormat: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    case raw, qcow2, qcow, qed, vmdk, vdi, vhdx
    /// Microsoft VHD (QEMU calls the driver `vpc`).
    case vpc

    public var description: String { rawValue }
}

/// A disk image QEMU boots from: where it is and what format it has.
public struct DiskImage: Sendable, Equatable {
    /// The paths the old container accepted, in the order they are tried.
    public static let defaultCandidates = ["/image/image.qcow2", "/image/image"]

    public var path: String
    public var format: DiskImageFormat

    public init(path: String, format: DiskImageFormat) {
        self.path = path
        self.format = format
    }

    /// Returns the first of `candidates` that exists (as any kind of file).
    ///
    /// - Throws: ``PreflightError/imageMissing(candidates:)`` when none exists.
    public static func locate(candidates: [String] = defaultCandidates) throws(PreflightError) -> String {
        for path in candidates {
            var info = stat()
            if stat(path, &info) == 0 { return path }
        }
        throw .imageMissing(candidates: candidates)
    }

    /// Opens `path`, reads its first bytes and identifies the format.
    ///
    /// Regular files and block devices are accepted. See ``DiskImageProbe`` for the rules.
    public static func probe(path: String) throws(PreflightError) -> DiskImage {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw .imageMissing(candidates: [path]) }
            throw .imageUnreadable(path: path, reason: String(cString: strerror(code)))
        }
        defer { close(fd) }

        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw .imageUnreadable(path: path, reason: String(cString: strerror(errno)))
        }
        let kind = info.st_mode & S_IFMT
        let size: UInt64
        switch kind {
        case S_IFREG:
            size = UInt64(info.st_size)
        case S_IFBLK:
            let end = lseek(fd, 0, SEEK_END)
            guard end >= 0 else {
                throw .imageUnreadable(path: path, reason: String(cString: strerror(errno)))
            }
            size = UInt64(end)
        default:
            throw .imageNotAFile(path: path)
        }

        var header = [UInt8](repeating: 0, count: DiskImageProbe.headerBytes)
        var filled = 0
        while filled < header.count {
            let count = header.withUnsafeMutableBytes { buffer in
                pread(fd, buffer.baseAddress! + filled, buffer.count - filled, off_t(filled))
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw .imageUnreadable(path: path, reason: String(cString: strerror(errno)))
            }
            if count == 0 { break }
            filled += count
        }
        header.removeSubrange(filled...)

        do {
            let format = try DiskImageProbe.detect(header: header, fileSize: size)
            return DiskImage(path: path, format: format)
        } catch {
            switch error {
            case .empty: throw .imageEmpty(path: path)
            case let .tooSmall(size): throw .imageTooSmall(path: path, size: size)
            case let .truncatedHeader(format): throw .imageHeaderTruncated(path: path, format: format)
            case let .corruptHeader(format, detail):
                throw .imageHeaderCorrupt(path: path, format: format, detail: detail)
            }
        }
    }
}

/// Pure format detection from an image's first bytes.
///
/// Rules, in order:
/// 1. A zero-length image is an error; so is one shorter than one 512-byte sector
///    (nothing can boot from it, and it is usually a truncated copy).
/// 2. A known signature selects that format: qcow/qcow2 (`QFI\xfb`, version 1 is
///    the old qcow, 2 and 3 are qcow2), QED (`QED\0`), VMDK (`KDMV`, `COWD` or a
///    `# Disk DescriptorFile` text descriptor), VDI (0xbeda107f at offset 64),
///    VHDX (`vhdxfile`), VHD (`conectix`).
/// 3. A signature whose header is cut short, or whose fields are impossible
///    (e.g. qcow2 version 7), is an error rather than a silent fall back to raw:
///    booting a damaged qcow2 as raw would hand the guest garbage.
/// 4. Anything else is raw.
public enum DiskImageProbe {
    /// How many leading bytes ``detect(header:fileSize:)`` needs at most.
    public static let headerBytes = 512
    /// Smallest image accepted: one sector.
    public static let minimumSize: UInt64 = 512

    public enum ProbeError: Error, Equatable {
        case empty
        case tooSmall(UInt64)
        case truncatedHeader(DiskImageFormat)
        case corruptHeader(DiskImageFormat, String)
    }

    /// Identifies the format from `header` (the first bytes, up to ``headerBytes``)
    /// and the total size of the image.
    public static func detect(header: [UInt8], fileSize: UInt64) throws(ProbeError) -> DiskImageFormat {
        if fileSize == 0 { throw .empty }

        if header.starts(with: [0x51, 0x46, 0x49, 0xFB]) {  // "QFI\xfb"
            return try qcow(header)
        }
        if header.starts(with: Array("QED\0".utf8)) {
            guard header.count >= 64 else { throw .truncatedHeader(.qed) }
            return .qed
        }
        if header.starts(with: Array("KDMV".utf8)) || header.starts(with: Array("COWD".utf8)) {
            guard header.count >= 512 else { throw .truncatedHeader(.vmdk) }
            return .vmdk
        }
        if header.starts(with: Array("# Disk DescriptorFile".utf8)) {
            return .vmdk
        }
        if header.starts(with: Array("vhdxfile".utf8)) {
            guard fileSize >= 1024 * 1024 else { throw .truncatedHeader(.vhdx) }
            return .vhdx
        }
        if header.starts(with: Array("conectix".utf8)) {
            guard header.count >= 512 else { throw .truncatedHeader(.vpc) }
            return .vpc
        }
        if header.count >= 68, readLE32(header, at: 64) == 0xBEDA_107F {
            guard header.count >= 400 else { throw .truncatedHeader(.vdi) }
            return .vdi
        }

        if fileSize < minimumSize { throw .tooSmall(fileSize) }
        return .raw
    }

    private static func qcow(_ header: [UInt8]) throws(ProbeError) -> DiskImageFormat {
        guard header.count >= 8 else { throw .truncatedHeader(.qcow2) }
        let version = readBE32(header, at: 4)
        switch version {
        case 1:
            guard header.count >= 48 else { throw .truncatedHeader(.qcow) }
            return .qcow
        case 2, 3:
            let minimum = version == 2 ? 72 : 104
            guard header.count >= minimum else { throw .truncatedHeader(.qcow2) }
            let clusterBits = readBE32(header, at: 20)
            guard (9...21).contains(clusterBits) else {
                throw .corruptHeader(.qcow2, "cluster_bits \(clusterBits) is outside 9...21")
            }
            if version == 3 {
                let headerLength = readBE32(header, at: 100)
                guard headerLength >= 104 else {
                    throw .corruptHeader(.qcow2, "header_length \(headerLength) is below 104")
                }
                guard header.count >= min(Int(headerLength), headerBytes) else {
                    throw .truncatedHeader(.qcow2)
                }
            }
            return .qcow2
        default:
            throw .corruptHeader(.qcow2, "unknown version \(version)")
        }
    }

    private static func readBE32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    private static func readLE32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
}
