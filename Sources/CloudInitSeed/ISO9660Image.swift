/// A small read-only ISO 9660 image (ECMA-119) with Joliet names, built in memory: the format
/// cloud-init's NoCloud data source finds by its volume label (`cidata`).
///
/// One flat root directory; every file gets its own extent. The primary volume descriptor carries
/// upper-case 8.3 names; the Joliet supplementary descriptor carries the real names (`meta-data`,
/// `user-data`, `network-config`), which Linux and blkid use when present. The output depends only
/// on the label and the files, byte for byte (no clock is read).
package struct ISO9660Image: Sendable {
    /// One file in the root directory.
    package struct File: Sendable, Equatable {
        /// The Joliet name (at most 64 characters, no `/`).
        package var name: String
        package var contents: [UInt8]

        package init(name: String, contents: [UInt8]) {
            self.name = name
            self.contents = contents
        }
    }

    /// Why an image cannot be built from these inputs.
    package enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case badLabel(String)
        case badName(String)
        case duplicateName(String)
        case tooLarge(bytes: Int)

        package var description: String {
            switch self {
            case .badLabel(let label): return "volume label \"\(label)\" must be 1–16 ASCII letters, digits or _"
            case .badName(let name): return "file name \"\(name)\" must be 1–64 printable ASCII characters without / or ;"
            case .duplicateName(let name): return "file name \"\(name)\" appears twice"
            case .tooLarge(let bytes): return "image of \(bytes) bytes is larger than this writer supports"
            }
        }
    }

    static let sector = 2048

    package var label: String
    package var files: [File]

    package init(label: String, files: [File]) {
        self.label = label
        self.files = files
    }

    /// The image's bytes, a whole number of 2048-byte sectors.
    package func bytes() throws(Error) -> [UInt8] {
        guard (1...16).contains(label.utf8.count),
              label.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || ($0 < 0x80 && Character(UnicodeScalar($0)).isLetter) || ($0 >= 0x30 && $0 <= 0x39) })
        else { throw .badLabel(label) }
        for file in files {
            guard (1...64).contains(file.name.utf8.count),
                  file.name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: ";") })
            else { throw .badName(file.name) }
        }
        let joliet = files.sorted { Self.ucs2(of: $0.name).lexicographicallyPrecedes(Self.ucs2(of: $1.name)) }
        if let duplicate = zip(joliet, joliet.dropFirst()).first(where: { $0.name == $1.name }) {
            throw .duplicateName(duplicate.0.name)
        }
        let primaryNames = Self.primaryNames(for: joliet.map(\.name))

        // Layout: system area 0–15, descriptors 16–18, path tables 19–22, root directories 23–24, files.
        let primaryRootSector = 23, jolietRootSector = 24
        var nextSector = 25
        var extents: [(sector: Int, length: Int)] = []
        for file in joliet {
            extents.append((nextSector, file.contents.count))
            nextSector += max(1, (file.contents.count + Self.sector - 1) / Self.sector)
        }
        let totalSectors = nextSector
        guard totalSectors * Self.sector < Int(Int32.max) else { throw .tooLarge(bytes: totalSectors * Self.sector) }

        let primaryRecords = zip(primaryNames, extents).map { name, extent in
            Self.directoryRecord(identifier: Array(name.utf8) + Array(";1".utf8), sector: extent.sector, length: extent.length, directory: false)
        }
        let jolietRecords = zip(joliet, extents).map { file, extent in
            Self.directoryRecord(identifier: Self.ucs2(of: file.name), sector: extent.sector, length: extent.length, directory: false)
        }
        let primaryRoot = Self.directory(sector: primaryRootSector, entries: primaryRecords)
        let jolietRoot = Self.directory(sector: jolietRootSector, entries: jolietRecords)
        guard primaryRoot.count == Self.sector, jolietRoot.count == Self.sector else { throw .tooLarge(bytes: primaryRoot.count) }

        var image = [UInt8](repeating: 0, count: totalSectors * Self.sector)
        func put(_ bytes: [UInt8], atSector sector: Int, offset: Int = 0) {
            image.replaceSubrange(sector * Self.sector + offset ..< sector * Self.sector + offset + bytes.count, with: bytes)
        }
        put(volumeDescriptor(joliet: false, totalSectors: totalSectors, rootSector: primaryRootSector, pathTables: (19, 20)), atSector: 16)
        put(volumeDescriptor(joliet: true, totalSectors: totalSectors, rootSector: jolietRootSector, pathTables: (21, 22)), atSector: 17)
        put([255] + Array("CD001".utf8) + [1], atSector: 18)
        put(Self.pathTable(rootSector: primaryRootSector, bigEndian: false), atSector: 19)
        put(Self.pathTable(rootSector: primaryRootSector, bigEndian: true), atSector: 20)
        put(Self.pathTable(rootSector: jolietRootSector, bigEndian: false), atSector: 21)
        put(Self.pathTable(rootSector: jolietRootSector, bigEndian: true), atSector: 22)
        put(primaryRoot, atSector: primaryRootSector)
        put(jolietRoot, atSector: jolietRootSector)
        for (file, extent) in zip(joliet, extents) where !file.contents.isEmpty {
            put(file.contents, atSector: extent.sector)
        }
        return image
    }

    // MARK: - Pieces

    private func volumeDescriptor(joliet: Bool, totalSectors: Int, rootSector: Int, pathTables: (little: Int, big: Int)) -> [UInt8] {
        var descriptor = [UInt8](repeating: 0, count: Self.sector)
        func put(_ bytes: [UInt8], at offset: Int) { descriptor.replaceSubrange(offset ..< offset + bytes.count, with: bytes) }
        func text(_ string: String, length: Int) -> [UInt8] {
            if joliet {
                let units = Self.ucs2(of: string).prefix(length & ~1)
                var padded = Array(units)
                while padded.count + 2 <= length { padded += [0x00, 0x20] }
                return padded + [UInt8](repeating: 0x20, count: length - padded.count)
            }
            let bytes = Array(string.utf8.prefix(length))
            return bytes + [UInt8](repeating: 0x20, count: length - bytes.count)
        }
        put([joliet ? 2 : 1] + Array("CD001".utf8) + [1], at: 0)
        put(text("LINUX", length: 32), at: 8)
        put(text(label, length: 32), at: 40)
        put(Self.bothEndian32(totalSectors), at: 80)
        if joliet { put(Array("%/E".utf8), at: 88) }  // UCS-2 level 3
        put(Self.bothEndian16(1), at: 120)  // volume set size
        put(Self.bothEndian16(1), at: 124)  // volume sequence number
        put(Self.bothEndian16(Self.sector), at: 128)
        put(Self.bothEndian32(10), at: 132)  // path table size: the root's record only
        put(Self.little32(pathTables.little), at: 140)
        put(Self.big32(pathTables.big), at: 148)
        put(Self.directoryRecord(identifier: [0], sector: rootSector, length: Self.sector, directory: true), at: 156)
        for (offset, length) in [(190, 128), (318, 128), (446, 128), (574, 128), (702, 37), (739, 37), (776, 37)] {
            put(text("", length: length), at: offset)
        }
        put(text("KVM-LAUNCH", length: 128), at: 574)  // application identifier
        let unset = Array("0000000000000000".utf8) + [0]
        for offset in [813, 830, 847, 864] { put(unset, at: offset) }
        descriptor[881] = 1  // file structure version
        return descriptor
    }

    /// A directory's extent: `.`, `..`, then `entries`, in one sector.
    private static func directory(sector: Int, entries: [[UInt8]]) -> [UInt8] {
        var bytes = directoryRecord(identifier: [0], sector: sector, length: Self.sector, directory: true)
            + directoryRecord(identifier: [1], sector: sector, length: Self.sector, directory: true)
        for entry in entries { bytes += entry }
        guard bytes.count <= Self.sector else { return bytes }
        return bytes + [UInt8](repeating: 0, count: Self.sector - bytes.count)
    }

    private static func directoryRecord(identifier: [UInt8], sector: Int, length: Int, directory: Bool) -> [UInt8] {
        var record: [UInt8] = [0, 0]
        record += bothEndian32(sector)
        record += bothEndian32(length)
        record += [100, 1, 1, 0, 0, 0, 0]  // 2000-01-01 00:00:00 UTC: fixed, so the image is reproducible
        record += [directory ? 0x02 : 0x00, 0, 0]
        record += bothEndian16(1)
        record += [UInt8(identifier.count)] + identifier
        if record.count % 2 == 1 { record.append(0) }
        record[0] = UInt8(record.count)
        return record
    }

    private static func pathTable(rootSector: Int, bigEndian: Bool) -> [UInt8] {
        [1, 0] + (bigEndian ? big32(rootSector) : little32(rootSector)) + (bigEndian ? [0, 1] : [1, 0]) + [0, 0]
    }

    /// Upper-case, unique 8.3 names for the primary descriptor (`META_DAT`, …).
    static func primaryNames(for names: [String]) -> [String] {
        var used: Set<String> = []
        return names.enumerated().map { position, name in
            let cleaned = String(name.uppercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "_" })
            var candidate = String(cleaned.prefix(8)) + "."
            if used.contains(candidate) { candidate = String(cleaned.prefix(5)) + "_\(position % 100)" + "." }
            used.insert(candidate)
            return candidate
        }
    }

    static func ucs2(of string: String) -> [UInt8] {
        string.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    static func little32(_ value: Int) -> [UInt8] { (0..<4).map { UInt8((value >> (8 * $0)) & 0xFF) } }
    static func big32(_ value: Int) -> [UInt8] { little32(value).reversed() }
    static func bothEndian32(_ value: Int) -> [UInt8] { little32(value) + big32(value) }
    static func bothEndian16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8), UInt8(value >> 8), UInt8(value & 0xFF)] }
}
