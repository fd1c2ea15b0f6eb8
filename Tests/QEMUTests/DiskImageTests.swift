import Foundation
import TestSupport
import Testing
import QEMU

@Suite struct DiskImageTests {
    @Test(arguments: [
        ("qcow2", DiskImageFormat.qcow2), ("raw", .raw), ("vmdk", .vmdk), ("vdi", .vdi),
        ("vhdx", .vhdx), ("qed", .qed), ("vpc", .vpc),
    ])
    func recognisesImagesMadeByQemuImg(_ tool: String, _ expected: DiskImageFormat) throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("disk.\(tool)")
        try run([qemuImg, "create", "-q", "-f", tool, path, "16M"])
        #expect(try DiskImage.probe(path: path) == DiskImage(path: path, format: expected))
    }

    @Test func aTruncatedQcow2HeaderIsAnError() throws {
        let directory = try TemporaryDirectory()
        let full = directory.file("full.qcow2")
        try run([qemuImg, "create", "-q", "-f", "qcow2", full, "16M"])
        let cut = directory.file("cut.qcow2")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: full))
        try bytes.prefix(40).write(to: URL(fileURLWithPath: cut))
        #expect(throws: PreflightError.imageHeaderTruncated(path: cut, format: .qcow2)) {
            try DiskImage.probe(path: cut)
        }
    }

    @Test func aCorruptQcow2HeaderIsAnError() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("bad.qcow2")
        try run([qemuImg, "create", "-q", "-f", "qcow2", path, "16M"])
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[7] = 7  // version 7
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(throws: PreflightError.imageHeaderCorrupt(path: path, format: .qcow2, detail: "unknown version 7")) {
            try DiskImage.probe(path: path)
        }
    }

    @Test func anEmptyImageIsAnError() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("empty.img")
        try (Data()).write(to: URL(fileURLWithPath: path))
        #expect(throws: PreflightError.imageEmpty(path: path)) { try DiskImage.probe(path: path) }
    }

    @Test func anImageSmallerThanASectorIsAnError() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("tiny.img")
        try (Data(repeating: 0x41, count: 100)).write(to: URL(fileURLWithPath: path))
        #expect(throws: PreflightError.imageTooSmall(path: path, size: 100)) { try DiskImage.probe(path: path) }
    }

    @Test func aMissingImageIsAnError() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("nothing.qcow2")
        #expect(throws: PreflightError.imageMissing(candidates: [path])) { try DiskImage.probe(path: path) }
    }

    @Test func aDirectoryIsNotAnImage() throws {
        let directory = try TemporaryDirectory()
        #expect(throws: PreflightError.imageNotAFile(path: directory.path, kind: "a directory")) { try DiskImage.probe(path: directory.path) }
        #expect(PreflightError.imageNotAFile(path: directory.path, kind: "a directory").description.contains("is a directory"))
    }

    @Test func locatePrefersTheQcow2NameAndFallsBackToTheOldOne() throws {
        let directory = try TemporaryDirectory()
        let modern = directory.file("image.qcow2")
        let legacy = directory.file("image")
        #expect(throws: PreflightError.imageMissing(candidates: [modern, legacy])) {
            try DiskImage.locate(candidates: [modern, legacy])
        }
        try run([qemuImg, "create", "-q", "-f", "raw", legacy, "1M"])
        #expect(try DiskImage.locate(candidates: [modern, legacy]) == legacy)
        #expect(try Preflight.checkImage(candidates: [modern, legacy]).image == DiskImage(path: legacy, format: .raw))
        try run([qemuImg, "create", "-q", "-f", "qcow2", modern, "1M"])
        #expect(try Preflight.checkImage(candidates: [modern, legacy]).image == DiskImage(path: modern, format: .qcow2))
    }

    @Test func detectionFromHeaderBytes() throws {
        func header(_ prefix: [UInt8], size: Int = 512) -> [UInt8] { prefix + [UInt8](repeating: 0, count: size - prefix.count) }
        var vdi = header([])
        vdi.replaceSubrange(64..<68, with: [0x7F, 0x10, 0xDA, 0xBE])
        #expect(try DiskImageProbe.detect(header: vdi, fileSize: 1 << 20) == .vdi)
        #expect(try DiskImageProbe.detect(header: header(Array("# Disk DescriptorFile\n".utf8)), fileSize: 600) == .vmdk)
        #expect(try DiskImageProbe.detect(header: header([0xEB, 0x63, 0x90]), fileSize: 1 << 20) == .raw)
        #expect(try DiskImageProbe.detect(header: header([0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 1]), fileSize: 1 << 20) == .qcow)
        // A qcow2 v3 header with impossible cluster bits.
        var qcow2 = header([0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 3])
        qcow2[23] = 40
        #expect(throws: DiskImageProbe.ProbeError.corruptHeader(.qcow2, "cluster_bits 40 is outside 9...21")) {
            try DiskImageProbe.detect(header: qcow2, fileSize: 1 << 20)
        }
        #expect(throws: DiskImageProbe.ProbeError.truncatedHeader(.qed)) {
            try DiskImageProbe.detect(header: Array("QED\0abc".utf8), fileSize: 7)
        }
        #expect(throws: DiskImageProbe.ProbeError.empty) { try DiskImageProbe.detect(header: [], fileSize: 0) }
    }
}
