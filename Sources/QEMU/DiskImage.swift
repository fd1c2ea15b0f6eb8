#if canImport(Glibc)
import Glibc
#endif
import NetworkTypes
import SystemPackage

/// The on-disk formats QEMU is told about explicitly (`format=` on `-drive`).
///
/// Stating the format stops QEMU from guessing it, which matters for raw images:
/// a guest could otherwise write a qcow2 header into its own raw disk and, on the
/// next boot, have QEMU follow a backing-file path of its choosing.
package enum DiskImageFormat: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    case raw, qcow2, qcow, qed, vmdk, vdi, vhdx
    /// Microsoft VHD (QEMU calls the driver `vpc`).
    case vpc

    package var description: String { rawValue }
}

extension DiskImageFormat {
    /// The format a file name states by its extension (`.qcow2`, `.raw`, `.vmdk`, `.vhd`, …), or nil when
    /// the name says nothing (`/image/image`, `.img`, a block device): such a file is probed and only
    /// raw is accepted without `VM_IMAGE_FORMAT`.
    package init?(fileName path: String) {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return nil }
        switch name[name.index(after: dot)...].lowercased() {
        case "qcow2": self = .qcow2
        case "qcow": self = .qcow
        case "qed": self = .qed
        case "vmdk": self = .vmdk
        case "vdi": self = .vdi
        case "vhdx": self = .vhdx
        case "vhd", "vpc": self = .vpc
        case "raw": self = .raw
        default: return nil
        }
    }
}

/// What the operator decided about the disk: `VM_IMAGE_FORMAT` and `VM_IMAGE_BACKING`.
package struct DiskImagePolicy: Sendable, Equatable {
    /// The stated format; nil means "from the file name" (see ``DiskImage/decideFormat(path:stated:header:fileSize:)``).
    package var format: DiskImageFormat?
    /// `VM_IMAGE_BACKING=allow`: backing and data files may be anywhere. By default they must resolve
    /// inside the image's own folder.
    package var backingAnywhere: Bool

    package init(format: DiskImageFormat? = nil, backingAnywhere: Bool = false) {
        self.format = format
        self.backingAnywhere = backingAnywhere
    }
}

/// One layer of a disk: the image itself, or a backing file under it.
package struct DiskLayer: Sendable, Equatable {
    /// The path the file was opened at (for messages and the dry run; QEMU gets its descriptor).
    package var path: String
    package var format: DiskImageFormat
    /// A block device (QEMU's `host_device` protocol) rather than a regular file.
    package var isBlockDevice: Bool
    /// A qcow2 external data file, opened with the layer.
    package var dataFile: String?
    package var dataFileIsBlockDevice: Bool

    package init(path: String, format: DiskImageFormat, isBlockDevice: Bool = false, dataFile: String? = nil, dataFileIsBlockDevice: Bool = false) {
        self.path = path
        self.format = format
        self.isBlockDevice = isBlockDevice
        self.dataFile = dataFile
        self.dataFileIsBlockDevice = dataFileIsBlockDevice
    }
}

/// A disk image QEMU boots from: its format and, for qcow2, every file it reads (backing chain and
/// external data files), each opened and checked once by ``open(path:policy:)``.
package struct DiskImage: Sendable, Equatable {
    /// The paths the old container accepted, in the order they are tried.
    package static let defaultCandidates = ["/image/image.qcow2", "/image/image"]
    /// The longest backing chain followed.
    package static let maximumChainLength = 16

    /// `layers[0]` is the image; each next one is the backing file of the one before.
    package var layers: [DiskLayer]
    /// The descriptor number QEMU sees the first of ``files`` at (the others follow in order).
    /// nil: QEMU opens ``path`` itself (only for images that were not checked, e.g. in tests).
    package var firstDescriptor: Int32?

    package var path: String { layers[0].path }
    package var format: DiskImageFormat { layers[0].format }

    package init(path: String, format: DiskImageFormat) {
        layers = [DiskLayer(path: path, format: format)]
    }

    package init(layers: [DiskLayer], firstDescriptor: Int32? = nil) {
        precondition(!layers.isEmpty, "a disk has at least its image")
        self.layers = layers
        self.firstDescriptor = firstDescriptor
    }

    /// Every file QEMU reads, in descriptor order: per layer the image, then its data file. Only
    /// the image (layer 0) and its data file are writable.
    package var files: [(path: String, writable: Bool)] {
        var files: [(path: String, writable: Bool)] = []
        for (index, layer) in layers.enumerated() {
            files.append((path: layer.path, writable: index == 0))
            if let dataFile = layer.dataFile { files.append((path: dataFile, writable: index == 0)) }
        }
        return files
    }

    /// Returns the first of `candidates` that exists (as any kind of file).
    ///
    /// - Throws: ``PreflightError/imageMissing(candidates:)`` when none exists.
    package static func locate(candidates: [String] = defaultCandidates) throws(PreflightError) -> String {
        for path in candidates {
            var info = stat()
            if lstat(path, &info) == 0 { return path }
        }
        throw .imageMissing(candidates: candidates)
    }

    /// Opens `path` read-only and identifies its format from its header, with no policy: the
    /// format the header shows (see ``DiskImageProbe``). For inspection; a launch uses ``open(path:policy:)``.
    package static func probe(path: String) throws(PreflightError) -> DiskImage {
        let file = try DiskFileHandle.open(path, writable: false)
        defer { file.close() }
        let header = try file.read(count: DiskImageProbe.headerBytes)
        do {
            return DiskImage(layers: [DiskLayer(path: path, format: try DiskImageProbe.detect(header: header, fileSize: file.size),
                                                isBlockDevice: file.isBlockDevice)])
        } catch {
            throw PreflightError(error, path: path)
        }
    }

    /// Decides the format once, from what the operator stated, never from what a guest could write:
    ///
    /// - `stated` (`VM_IMAGE_FORMAT`) wins; else the file name's extension (`.qcow2`, `.raw`, …) states it.
    /// - A stated `raw` is raw whatever the first bytes say (a raw disk's guest writes them).
    /// - Any other stated format must be what the header shows: a `.qcow2` that is not qcow2 is an error,
    ///   never a raw boot.
    /// - A name that states nothing (`/image/image`, `.img`) is probed and must be raw: a qcow2 (or other)
    ///   header there is refused unless `VM_IMAGE_FORMAT` says so, since a raw disk's guest could have
    ///   written it.
    package static func decideFormat(path: String, stated: DiskImageFormat?, header: [UInt8], fileSize: UInt64) throws(PreflightError) -> DiskImageFormat {
        let named = stated ?? DiskImageFormat(fileName: path)
        if named == .raw {
            if fileSize == 0 { throw .imageEmpty(path: path) }
            if fileSize < DiskImageProbe.minimumSize { throw .imageTooSmall(path: path, size: fileSize) }
            return .raw
        }
        let found: DiskImageFormat
        do {
            found = try DiskImageProbe.detect(header: header, fileSize: fileSize)
        } catch {
            throw PreflightError(error, path: path)
        }
        if let named {
            guard found == named else { throw .imageFormatMismatch(path: path, expected: named, found: found, stated: stated != nil) }
            return named
        }
        guard found == .raw else { throw .imageFormatNotStated(path: path, found: found) }
        return .raw
    }

    /// Opens the image at `path` (and, for qcow2, its backing chain and data files), checks every file
    /// and decides the format; the returned descriptors are the files QEMU must be given, so what was
    /// checked is what QEMU uses.
    ///
    /// Never blocks: a FIFO, socket or character device is refused before it is opened, and every
    /// open is non-blocking. Backing and data files must resolve inside the image's own folder
    /// unless ``DiskImagePolicy/backingAnywhere``.
    package static func open(path: String, policy: DiskImagePolicy) throws(PreflightError) -> OpenedDiskImage {
        var handles: [DiskFileHandle] = []
        var success = false
        defer { if !success { for handle in handles { handle.close() } } }

        let top = try DiskFileHandle.open(path, writable: true)
        handles.append(top)
        let folder = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        let folderReal = try realFolder(folder.isEmpty ? "/" : folder, image: path)
        // The files met so far (device, inode): a short list, searched in place (a Set of arrays cost
        // ~0.1 ms of start-up in runtime metadata).
        var seen: [[UInt64]] = [top.identity]

        let topHeader = try top.read(count: DiskImageProbe.headerBytes)
        let format = try decideFormat(path: path, stated: policy.format, header: topHeader, fileSize: top.size)
        var layers: [DiskLayer] = []
        var current = (path: path, handle: top, format: format, writable: true)
        while true {
            var layer = DiskLayer(path: current.path, format: current.format, isBlockDevice: current.handle.isBlockDevice)
            var next: (path: String, handle: DiskFileHandle, format: DiskImageFormat, writable: Bool)?
            switch current.format {
            case .qcow2:
                let first = try current.handle.read(count: DiskImageProbe.headerBytes)
                let header = try current.handle.read(count: max(first.count, Qcow2References.bytesNeeded(header: first)))
                let references: Qcow2References
                do { references = try Qcow2References.parse(header) } catch {
                    throw .imageHeaderCorrupt(path: current.path, format: .qcow2, detail: error.detail)
                }
                if let name = references.dataFile {
                    let resolved = resolve(name, from: current.path)
                    let data = try openReference(resolved, name: name, role: "data file", of: current.path, writable: current.writable,
                                                 folder: folderReal, policy: policy)
                    handles.append(data)
                    guard !seen.contains(data.identity) else {
                        throw .imageReferenceUnusable(path: current.path, role: "data file", reference: name, reason: "it is a file the disk already uses")
                    }
                    seen.append(data.identity)
                    layer.dataFile = resolved
                    layer.dataFileIsBlockDevice = data.isBlockDevice
                }
                if let name = references.backingFile {
                    guard layers.count + 1 < maximumChainLength else {
                        throw .imageReferenceUnusable(path: path, role: "backing file", reference: name, reason: "the backing chain is longer than \(maximumChainLength) files")
                    }
                    let resolved = resolve(name, from: current.path)
                    let backing = try openReference(resolved, name: name, role: "backing file", of: current.path, writable: false,
                                                    folder: folderReal, policy: policy)
                    handles.append(backing)
                    guard !seen.contains(backing.identity) else {
                        throw .imageReferenceUnusable(path: current.path, role: "backing file", reference: name, reason: "the backing chain loops")
                    }
                    seen.append(backing.identity)
                    var statedFormat: DiskImageFormat?
                    if let stated = references.backingFormat {
                        guard let format = DiskImageFormat(rawValue: stated) else {
                            throw .imageReferenceUnusable(path: current.path, role: "backing file", reference: name, reason: "its backing format '\(stated)' is unknown")
                        }
                        statedFormat = format
                    }
                    // A backing file stated raw is raw, whatever its first bytes say; otherwise its header
                    // (which no guest can write: backing files are read-only) must show the stated format.
                    let backingFormat: DiskImageFormat
                    if statedFormat == .raw {
                        backingFormat = .raw
                    } else {
                        let backingHeader = try backing.read(count: DiskImageProbe.headerBytes)
                        let found: DiskImageFormat
                        do {
                            found = try DiskImageProbe.detect(header: backingHeader, fileSize: backing.size)
                        } catch {
                            throw PreflightError(error, path: resolved)
                        }
                        if let statedFormat, statedFormat != found {
                            throw .imageFormatMismatch(path: resolved, expected: statedFormat, found: found, stated: true)
                        }
                        backingFormat = found
                    }
                    guard backingFormat == .raw || backingFormat == .qcow2 else {
                        throw .imageReferenceUnusable(path: current.path, role: "backing file", reference: name, reason: "it is \(backingFormat), and kvm-launch follows only raw and qcow2 backing files; convert it with qemu-img convert -O qcow2")
                    }
                    next = (resolved, backing, backingFormat, false)
                }
            case .qcow, .qed:
                let header = try current.handle.read(count: DiskImageProbe.headerBytes)
                if DiskImageProbe.hasBackingFile(header: header, format: current.format) {
                    throw .imageReferenceUnusable(path: current.path, role: "backing file", reference: "(in its \(current.format) header)",
                                                  reason: "kvm-launch follows backing files of qcow2 images only; convert it with qemu-img convert -O qcow2")
                }
            case .vmdk:
                let header = try current.handle.read(count: DiskImageProbe.headerBytes)
                if header.starts(with: Array("# Disk DescriptorFile".utf8)) {
                    throw .imageReferenceUnusable(path: current.path, role: "extent file", reference: "(in its descriptor)",
                                                  reason: "a VMDK descriptor names other files; convert it to one file with qemu-img convert -O qcow2")
                }
            case .raw, .vdi, .vhdx, .vpc:
                break
            }
            layers.append(layer)
            guard let following = next else { break }
            current = following
        }
        success = true
        return OpenedDiskImage(image: DiskImage(layers: layers), descriptors: handles.map(\.descriptor))
    }

    /// `name` as QEMU resolves a backing or data file name: absolute as it is, else relative to the
    /// folder of the file that names it.
    static func resolve(_ name: String, from referrer: String) -> String {
        if name.hasPrefix("/") { return name }
        guard let slash = referrer.lastIndex(of: "/") else { return name }
        return String(referrer[...slash]) + name
    }

    private static func realFolder(_ folder: String, image: String) throws(PreflightError) -> String {
        guard let real = realpath(folder, nil) else {
            throw .imageUnreadable(path: image, errno: .current)
        }
        defer { free(real) }
        return String(cString: real)
    }

    private static func openReference(_ resolved: String, name: String, role: String, of referrer: String, writable: Bool,
                                      folder: String, policy: DiskImagePolicy) throws(PreflightError) -> DiskFileHandle {
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw .imageReferenceUnusable(path: referrer, role: role, reference: name, reason: "the name has control characters")
        }
        let handle: DiskFileHandle
        do {
            handle = try DiskFileHandle.open(resolved, writable: writable)
        } catch {
            throw .imageReferenceUnusable(path: referrer, role: role, reference: name, reason: error.shortReason)
        }
        if !policy.backingAnywhere {
            // What was opened, not what the name says: the descriptor's own path, after every symlink.
            let real = handle.realPath
            guard let real, real.hasPrefix(folder == "/" ? "/" : folder + "/") else {
                handle.close()
                throw .imageReferenceOutside(path: referrer, role: role, reference: name, resolved: real ?? resolved, folder: folder)
            }
        }
        return handle
    }
}

/// A checked disk: the ``DiskImage`` QEMU is told about and the open descriptors of its
/// ``DiskImage/files``, in order. Map them into QEMU at ``DiskImage/firstDescriptor`` onwards
/// (the Supervisor's `FileDescriptorMapping`); they close when this is released.
package final class OpenedDiskImage: Sendable {
    package let image: DiskImage
    /// This process's descriptors, one per file of ``image``.
    package let descriptors: [Int32]

    init(image: DiskImage, descriptors: [Int32]) {
        self.image = image
        self.descriptors = descriptors
    }

    deinit {
        for descriptor in descriptors { Glibc.close(descriptor) }
    }
}

/// One open disk file: regular file or block device, opened without blocking.
struct DiskFileHandle {
    let path: String
    let descriptor: Int32
    let isBlockDevice: Bool
    let size: UInt64
    /// Device and inode: the same file reached by two names is one file.
    let identity: [UInt64]

    /// Refuses what is not a regular file or block device before opening it (a FIFO would block,
    /// a character device can act on open), then opens with `O_NONBLOCK` and checks again what was
    /// opened.
    static func open(_ path: String, writable: Bool) throws(PreflightError) -> DiskFileHandle {
        var info = stat()
        guard stat(path, &info) == 0 else { throw error(.current, path: path) }
        guard isDisk(info.st_mode) else { throw .imageNotAFile(path: path, kind: kindName(info.st_mode)) }
        let descriptor = Glibc.open(path, (writable ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard descriptor >= 0 else { throw error(.current, path: path, writable: writable) }
        guard fstat(descriptor, &info) == 0 else {
            let code = Errno.current
            Glibc.close(descriptor)
            throw error(code, path: path)
        }
        guard isDisk(info.st_mode) else {
            Glibc.close(descriptor)
            throw .imageNotAFile(path: path, kind: kindName(info.st_mode))
        }
        // QEMU gets this descriptor: blocking I/O from here on, as for a file it opened itself.
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
        var size = UInt64(info.st_size)
        let block = info.st_mode & S_IFMT == S_IFBLK
        if block {
            let end = lseek(descriptor, 0, SEEK_END)
            guard end >= 0 else {
                let code = Errno.current
                Glibc.close(descriptor)
                throw error(code, path: path)
            }
            size = UInt64(end)
        }
        return DiskFileHandle(path: path, descriptor: descriptor, isBlockDevice: block, size: size,
                              identity: [UInt64(info.st_dev), UInt64(info.st_ino)])
    }

    func close() { Glibc.close(descriptor) }

    /// Up to `count` bytes from the start (fewer at the end of the file).
    func read(count: Int) throws(PreflightError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got = retryingOnInterrupt {
                bytes.withUnsafeMutableBytes { buffer in
                    pread(descriptor, buffer.baseAddress! + filled, count - filled, off_t(filled))
                }
            }
            if got < 0 {
                throw .imageUnreadable(path: path, errno: .current)
            }
            if got == 0 { break }
            filled += got
        }
        bytes.removeSubrange(filled...)
        return bytes
    }

    /// The path the kernel has for the open file (symlinks resolved), from /proc/self/fd.
    var realPath: String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/fd/\(descriptor)", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func isDisk(_ mode: mode_t) -> Bool {
        mode & S_IFMT == S_IFREG || mode & S_IFMT == S_IFBLK
    }

    static func kindName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO (named pipe)"
        case S_IFCHR: "a character device"
        case S_IFSOCK: "a socket"
        case S_IFLNK: "a symbolic link"
        default: "not a regular file"
        }
    }

    private static func error(_ code: Errno, path: String, writable: Bool = false) -> PreflightError {
        if code == .noSuchFileOrDirectory { return .imageMissing(candidates: [path]) }
        let forWriting = writable && (code == .readOnlyFileSystem || code == .permissionDenied || code == .notPermitted)
        return .imageUnreadable(path: path, errno: code, forWriting: forWriting)
    }
}

/// The file references in a qcow2 header: backing file, its format, external data file.
struct Qcow2References: Equatable {
    var backingFile: String?
    var backingFormat: String?
    var dataFile: String?

    struct Malformed: Error { var detail: String }

    static let backingFormatExtension: UInt32 = 0xE279_2ACA
    static let dataFileExtension: UInt32 = 0x4441_5441
    static let externalDataFileBit: UInt64 = 1 << 2

    /// How many leading bytes ``parse(_:)`` needs: the first cluster (QEMU keeps the header, its
    /// extensions and the backing file name there), at most 2 MiB.
    static func bytesNeeded(header: [UInt8]) -> Int {
        guard header.count >= 24 else { return header.count }
        let bits = DiskImageProbe.readBE32(header, at: 20)
        return 1 << Int(min(max(bits, 9), 21))
    }

    static func parse(_ bytes: [UInt8]) throws(Malformed) -> Qcow2References {
        guard bytes.count >= 72 else { throw Malformed(detail: "the header is cut short") }
        let version = DiskImageProbe.readBE32(bytes, at: 4)
        let clusterSize = 1 << Int(DiskImageProbe.readBE32(bytes, at: 20))
        let backingOffset = DiskImageProbe.readBE64(bytes, at: 8)
        let backingSize = Int(DiskImageProbe.readBE32(bytes, at: 16))
        var references = Qcow2References()
        if backingOffset != 0 && backingSize > 0 {
            guard backingSize <= 1023, backingOffset < UInt64(clusterSize), Int(backingOffset) + backingSize <= bytes.count else {
                throw Malformed(detail: "backing file name at offset \(backingOffset), \(backingSize) bytes, lies outside the first cluster")
            }
            references.backingFile = String(decoding: bytes[Int(backingOffset)..<Int(backingOffset) + backingSize], as: UTF8.self)
        }
        var features: UInt64 = 0
        var offset = 72
        if version >= 3 {
            guard bytes.count >= 104 else { throw Malformed(detail: "the header is cut short") }
            features = DiskImageProbe.readBE64(bytes, at: 72)
            offset = Int(DiskImageProbe.readBE32(bytes, at: 100))
        }
        let end = backingOffset != 0 ? min(Int(backingOffset), bytes.count) : min(clusterSize, bytes.count)
        while offset + 8 <= end {
            let type = DiskImageProbe.readBE32(bytes, at: offset)
            let length = Int(DiskImageProbe.readBE32(bytes, at: offset + 4))
            if type == 0 { break }
            guard offset + 8 + length <= end else { throw Malformed(detail: "header extension 0x\(String(type, radix: 16)) runs past its space") }
            let data = bytes[(offset + 8)..<(offset + 8 + length)]
            switch type {
            case backingFormatExtension: references.backingFormat = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
            case dataFileExtension: references.dataFile = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
            default: break
            }
            offset += 8 + (length + 7) / 8 * 8
        }
        if features & externalDataFileBit == 0 {
            // QEMU ignores a data file name unless the feature bit says the image has one.
            references.dataFile = nil
        } else if references.dataFile == nil || references.dataFile == "" {
            throw Malformed(detail: "it needs an external data file but names none")
        }
        if references.backingFile == "" { references.backingFile = nil }
        return references
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
package enum DiskImageProbe {
    /// How many leading bytes ``detect(header:fileSize:)`` needs at most.
    package static let headerBytes = 512
    /// Smallest image accepted: one sector.
    package static let minimumSize: UInt64 = 512

    package enum ProbeError: Error, Equatable {
        case empty
        case tooSmall(UInt64)
        case truncatedHeader(DiskImageFormat)
        case corruptHeader(DiskImageFormat, String)
    }

    /// Identifies the format from `header` (the first bytes, up to ``headerBytes``)
    /// and the total size of the image.
    package static func detect(header: [UInt8], fileSize: UInt64) throws(ProbeError) -> DiskImageFormat {
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

    /// Whether a qcow (v1) or QED header names a backing file.
    static func hasBackingFile(header: [UInt8], format: DiskImageFormat) -> Bool {
        switch format {
        case .qcow: header.count >= 20 && readBE32(header, at: 16) > 0
        // QED: the "has backing file" feature bit (LE64 features at offset 16).
        case .qed: header.count >= 24 && header[16] & 1 == 1
        default: false
        }
    }

    static func readBE32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func readBE64(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        bytes[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) }
    }

    private static func readLE32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
}
