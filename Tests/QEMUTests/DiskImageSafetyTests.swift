import Foundation
import TestSupport
import Testing
import QEMU
import Supervisor

/// Issue 10 items 4-6: the disk's format is decided once from what the operator stated, every file
/// QEMU reads is checked (backing and data files only inside the image's folder), nothing blocks, and
/// QEMU gets the descriptors that were checked. Every image here is made by qemu-img.
@Suite struct DiskImageSafetyTests {
    private func qcow2(_ path: String, size: String = "16M", options: [String] = []) throws {
        try run([qemuImg, "create", "-q", "-f", "qcow2"] + options + [path, size])
    }

    // MARK: the format, decided once

    @Test func aRawDiskWithAQcow2HeaderWrittenIntoItIsNeverReadAsQcow2() throws {
        let directory = try TemporaryDirectory()
        // What a guest can do to its raw disk: write a qcow2 header (with a backing file) into sector 0.
        let evil = directory.file("evil.qcow2")
        try qcow2(evil, options: ["-b", "/etc/passwd", "-F", "raw"])
        let raw = directory.file("image")
        try run([qemuImg, "create", "-q", "-f", "raw", raw, "1M"])
        let header = try Data(contentsOf: URL(fileURLWithPath: evil)).prefix(4096)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: raw))
        try handle.write(contentsOf: header)
        try handle.close()
        #expect(try DiskImage.probe(path: raw).format == .qcow2, "the header really looks like qcow2")

        // /image/image (a name that states no format): refused, not followed.
        #expect(throws: PreflightError.imageFormatNotStated(path: raw, found: .qcow2)) {
            try DiskImage.open(path: raw, policy: DiskImagePolicy())
        }
        // Stated raw (VM_IMAGE_FORMAT=raw, or a .raw name): raw, whatever the bytes say.
        #expect(try DiskImage.open(path: raw, policy: DiskImagePolicy(format: .raw)).image == DiskImage(path: raw, format: .raw))
        let named = directory.file("disk.raw")
        try FileManager.default.copyItem(atPath: raw, toPath: named)
        #expect(try DiskImage.open(path: named, policy: DiskImagePolicy()).image == DiskImage(path: named, format: .raw))
        // Stated qcow2: then its backing file is checked like any other (and /etc/passwd is outside).
        #expect(throws: PreflightError.self) { try DiskImage.open(path: raw, policy: DiskImagePolicy(format: .qcow2)) }
    }

    @Test func randomBytesNamedQcow2AreAnErrorNotARawBoot() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("image.qcow2")
        var generator = SystemRandomNumberGenerator()
        try Data((0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: URL(fileURLWithPath: path))
        #expect(throws: PreflightError.imageFormatMismatch(path: path, expected: .qcow2, found: .raw, stated: false)) {
            try DiskImage.open(path: path, policy: DiskImagePolicy())
        }
        let message = PreflightError.imageFormatMismatch(path: path, expected: .qcow2, found: .raw, stated: false).description
        #expect(message.contains("is named .qcow2 but is not qcow2"))
        // A stated format is checked the same way.
        #expect(throws: PreflightError.imageFormatMismatch(path: path, expected: .qcow2, found: .raw, stated: true)) {
            try DiskImage.open(path: path, policy: DiskImagePolicy(format: .qcow2))
        }
    }

    @Test func aQcow2AtTheOldNameNeedsItsFormatStated() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("image")
        try qcow2(path)
        #expect(throws: PreflightError.imageFormatNotStated(path: path, found: .qcow2)) {
            try DiskImage.open(path: path, policy: DiskImagePolicy())
        }
        #expect(try DiskImage.open(path: path, policy: DiskImagePolicy(format: .qcow2)).image.format == .qcow2)
        let raw = directory.file("other")
        try run([qemuImg, "create", "-q", "-f", "raw", raw, "1M"])
        #expect(try DiskImage.open(path: raw, policy: DiskImagePolicy()).image.format == .raw)
    }

    @Test(arguments: [("disk.qcow2", DiskImageFormat.qcow2), ("d.RAW", .raw), ("x.vhd", .vpc), ("x.vmdk", .vmdk)])
    func theFileNameStatesTheFormat(_ name: String, _ format: DiskImageFormat) {
        #expect(DiskImageFormat(fileName: "/image/\(name)") == format)
    }

    @Test(arguments: ["/image/image", "/image/cloud.img", "/dev/sdb", "/image/.qcow2"])
    func namesThatStateNothing(_ path: String) {
        #expect(DiskImageFormat(fileName: path) == nil)
    }

    // MARK: backing and data files

    @Test func aBackingFileOnTheHostIsRefused() throws {
        let directory = try TemporaryDirectory()
        let top = directory.file("image.qcow2")
        try qcow2(top, options: ["-b", "/etc/passwd", "-F", "raw"])
        #expect {
            try DiskImage.open(path: top, policy: DiskImagePolicy())
        } throws: { error in
            guard case let .imageReferenceOutside(path, role, reference, resolved, folder) = error as? PreflightError else { return false }
            return path == top && role == "backing file" && reference == "/etc/passwd" && resolved == "/etc/passwd"
                && folder == realPath(directory.path)
        }
        // VM_IMAGE_BACKING=allow: followed, and the chain is what QEMU will be told.
        let opened = try DiskImage.open(path: top, policy: DiskImagePolicy(backingAnywhere: true))
        #expect(opened.image.layers.map(\.path) == [top, "/etc/passwd"])
        #expect(opened.image.layers.map(\.format) == [.qcow2, .raw])
        #expect(opened.descriptors.count == 2)
    }

    @Test func aBackingFileInTheFolderIsFollowedAndChained() throws {
        let directory = try TemporaryDirectory()
        try run([qemuImg, "create", "-q", "-f", "raw", directory.file("base.raw"), "16M"])
        try qcow2(directory.file("middle.qcow2"), options: ["-b", "base.raw", "-F", "raw"])
        try qcow2(directory.file("image.qcow2"), options: ["-b", "middle.qcow2", "-F", "qcow2"])
        let opened = try DiskImage.open(path: directory.file("image.qcow2"), policy: DiskImagePolicy())
        #expect(opened.image.layers.map(\.path) == [directory.file("image.qcow2"), directory.file("middle.qcow2"), directory.file("base.raw")])
        #expect(opened.image.layers.map(\.format) == [.qcow2, .qcow2, .raw])
        #expect(opened.image.files.map(\.writable) == [true, false, false])
        // Only the image is opened for writing; the backing files read-only.
        #expect(opened.descriptors.map { fcntl($0, F_GETFL) & O_ACCMODE } == [O_RDWR, O_RDONLY, O_RDONLY])
    }

    @Test func aSymlinkInTheFolderThatLeadsOutIsRefused() throws {
        let directory = try TemporaryDirectory()
        let elsewhere = try TemporaryDirectory()
        try qcow2(elsewhere.file("secret.qcow2"))
        try FileManager.default.createSymbolicLink(atPath: directory.file("base.qcow2"), withDestinationPath: elsewhere.file("secret.qcow2"))
        try qcow2(directory.file("image.qcow2"), options: ["-b", "base.qcow2", "-F", "qcow2"])
        #expect {
            try DiskImage.open(path: directory.file("image.qcow2"), policy: DiskImagePolicy())
        } throws: { error in
            guard case let .imageReferenceOutside(_, _, reference, resolved, _) = error as? PreflightError else { return false }
            return reference == "base.qcow2" && resolved == realPath(elsewhere.file("secret.qcow2"))
        }
        // ../ out of the folder, too.
        try qcow2(directory.file("up.qcow2"), options: ["-b", "../\(URL(fileURLWithPath: elsewhere.path).lastPathComponent)/secret.qcow2", "-F", "qcow2"])
        #expect(throws: PreflightError.self) { try DiskImage.open(path: directory.file("up.qcow2"), policy: DiskImagePolicy()) }
    }

    @Test func aBackingFormatThatLiesIsRefused() throws {
        let directory = try TemporaryDirectory()
        try qcow2(directory.file("base.qcow2"))
        // -u: qemu-img does not check; the header says raw...
        try run([qemuImg, "create", "-q", "-f", "qcow2", "-u", "-b", "base.qcow2", "-F", "vmdk", directory.file("image.qcow2"), "16M"])
        #expect(throws: PreflightError.imageFormatMismatch(path: directory.file("base.qcow2"), expected: .vmdk, found: .qcow2, stated: true)) {
            try DiskImage.open(path: directory.file("image.qcow2"), policy: DiskImagePolicy())
        }
        // ...and a missing backing file is named.
        try run([qemuImg, "create", "-q", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", directory.file("orphan.qcow2"), "16M"])
        #expect(throws: PreflightError.imageReferenceUnusable(path: directory.file("orphan.qcow2"), role: "backing file", reference: "gone.qcow2", reason: "it does not exist")) {
            try DiskImage.open(path: directory.file("orphan.qcow2"), policy: DiskImagePolicy())
        }
    }

    @Test func anExternalDataFileOutsideTheFolderIsRefusedInsideItIsOpened() throws {
        let directory = try TemporaryDirectory()
        let elsewhere = try TemporaryDirectory()
        try qcow2(directory.file("out.qcow2"), options: ["-o", "data_file=\(elsewhere.file("data.raw"))"])
        #expect {
            try DiskImage.open(path: directory.file("out.qcow2"), policy: DiskImagePolicy())
        } throws: { error in
            guard case let .imageReferenceOutside(_, role, reference, _, _) = error as? PreflightError else { return false }
            return role == "data file" && reference == elsewhere.file("data.raw")
        }
        try qcow2(directory.file("in.qcow2"), options: ["-o", "data_file=\(directory.file("data.raw"))"])
        let opened = try DiskImage.open(path: directory.file("in.qcow2"), policy: DiskImagePolicy())
        #expect(opened.image.layers == [DiskLayer(path: directory.file("in.qcow2"), format: .qcow2, dataFile: directory.file("data.raw"))])
        #expect(opened.descriptors.map { fcntl($0, F_GETFL) & O_ACCMODE } == [O_RDWR, O_RDWR])
    }

    // MARK: files that are not disks

    @Test func aFIFOIsRefusedWithoutBlocking() throws {
        let directory = try TemporaryDirectory()
        let fifo = directory.file("image.qcow2")
        #expect(mkfifo(fifo, 0o600) == 0)
        let outcome = try runBounded(seconds: 10, unblock: {
            // Were the launcher blocked in open(), a writer releases it (the test then fails, not hangs).
            let writer = open(fifo, O_WRONLY | O_NONBLOCK)
            if writer >= 0 { close(writer) }
        }) { () -> PreflightError? in
            do { _ = try DiskImage.open(path: fifo, policy: DiskImagePolicy()); return nil } catch { return error as? PreflightError }
        }
        #expect(outcome == .imageNotAFile(path: fifo, kind: "a FIFO (named pipe)"))
        // Also as the backing file of an image.
        #expect(mkfifo(directory.file("pipe"), 0o600) == 0)
        let top = directory.file("top.qcow2"), pipe = directory.file("pipe")
        try run([qemuImg, "create", "-q", "-f", "qcow2", "-u", "-b", "pipe", "-F", "raw", top, "16M"])
        let backing = try runBounded(seconds: 10, unblock: {
            let writer = open(pipe, O_WRONLY | O_NONBLOCK)
            if writer >= 0 { close(writer) }
        }) { () -> PreflightError? in
            do { _ = try DiskImage.open(path: top, policy: DiskImagePolicy()); return nil } catch { return error as? PreflightError }
        }
        #expect(backing == .imageReferenceUnusable(path: top, role: "backing file", reference: "pipe",
                                                   reason: "it is a FIFO (named pipe), not a regular file or block device"))
    }

    @Test func devZeroIsACharacterDeviceNotADirectory() throws {
        #expect(throws: PreflightError.imageNotAFile(path: "/dev/zero", kind: "a character device")) {
            try DiskImage.open(path: "/dev/zero", policy: DiskImagePolicy())
        }
        let message = PreflightError.imageNotAFile(path: "/dev/zero", kind: "a character device").description
        #expect(message.contains("is a character device") && !message.contains("directory"))
    }

    // MARK: QEMU opens what was checked

    @Test func theArgumentsNameDescriptorsNeverThePath() throws {
        let directory = try TemporaryDirectory()
        try run([qemuImg, "create", "-q", "-f", "raw", directory.file("base.raw"), "16M"])
        try qcow2(directory.file("image.qcow2"), options: ["-b", "base.raw", "-F", "raw", "-o", "data_file=\(directory.file("data.raw"))"])
        let opened = try DiskImage.open(path: directory.file("image.qcow2"), policy: DiskImagePolicy())
        var disk = opened.image
        disk.firstDescriptor = 7
        let configuration = QEMUConfiguration(accelerator: .tcg, disk: disk, qmpSocketPath: "/run/q.sock")
        let arguments = try configuration.arguments()
        #expect(!arguments.contains { $0.contains(directory.path) }, "no path reaches QEMU")
        #expect(configuration.childFileDescriptors == [7, 8, 9])
        let blockdev = try #require(arguments.firstIndex(of: "-blockdev").map { arguments[$0 + 1] })
        let json = try #require(try JSONSerialization.jsonObject(with: Data(blockdev.utf8)) as? [String: Any])
        #expect(json["driver"] as? String == "qcow2")
        #expect((json["file"] as? [String: Any])?["filename"] as? String == "/dev/fdset/7")
        #expect((json["data-file"] as? [String: Any])?["filename"] as? String == "/dev/fdset/8")
        let backing = try #require(json["backing"] as? [String: Any])
        #expect(backing["driver"] as? String == "raw")
        #expect(backing["read-only"] as? Bool == true)
        #expect((backing["file"] as? [String: Any])?["filename"] as? String == "/dev/fdset/9")
        #expect(arguments.contains("fd=7,set=7") && arguments.contains("fd=9,set=9"))
    }

    /// The image is checked, then another file (of another size) is renamed over its path: QEMU, spawned
    /// with the Supervisor's descriptor mapping, holds the checked file and shows its size, not the decoy's.
    @Test func qemuUsesTheCheckedFileEvenWhenThePathIsSwappedAfterTheCheck() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("image.qcow2")
        let decoy = directory.file("decoy.qcow2")
        try qcow2(path, size: "16M")
        try qcow2(decoy, size: "48M")
        let opened = try DiskImage.open(path: path, policy: DiskImagePolicy())
        let checkedInode = try inode(path)
        // The swap: the checked image moves away and the decoy takes its name.
        #expect(rename(path, directory.file("moved.qcow2")) == 0)
        #expect(rename(decoy, path) == 0)
        #expect(try inode(path) != checkedInode)

        var disk = opened.image
        disk.firstDescriptor = 3
        let socket = directory.file("qmp.sock")
        let configuration = QEMUConfiguration(accelerator: .tcg, memoryMiB: 64, disk: disk, qmpSocketPath: socket, extraArguments: ["-S"])
        let mappings = zip(opened.descriptors, configuration.childFileDescriptors).map { FileDescriptorMapping(parent: $0, child: $1) }
        let pid = try ChildProcess.spawn(ChildCommand(executable: qemuBinary, arguments: try configuration.arguments(), fileDescriptors: mappings))
        defer { kill(pid, SIGKILL); var status: Int32 = 0; waitpid(pid, &status, 0) }
        try await waitForSocket(socket, pid: pid)

        // QEMU's own descriptors: the checked inode is among them, the decoy is not.
        let held = try qemuInodes(pid)
        #expect(held.contains(checkedInode))
        #expect(!held.contains(try inode(path)))
        // And the disk QEMU shows the guest is the checked one: 16 MiB, not the decoy's 48.
        let client = try await QMPClient.connect(socketPath: socket)
        defer { client.close() }
        let nodes = try await client.execute("query-named-block-nodes")
        guard case let .array(list) = nodes else { throw FixtureFailure("query-named-block-nodes: \(nodes)") }
        let root = try #require(list.first { $0["node-name"]?.stringValue == "disk0" })
        #expect(root["image"]?["virtual-size"]?.intValue == Int64(16 << 20))
        #expect(root["file"]?.stringValue?.contains("/dev/fdset/3") == true)
        let fdsets = try await client.execute("query-fdsets")
        #expect(fdsets.description.contains("\"fdset-id\": 3"))
    }
}

/// The canonical path (symlinks resolved) of `path`.
func realPath(_ path: String) -> String {
    guard let real = realpath(path, nil) else { return path }
    defer { free(real) }
    return String(cString: real)
}

private func inode(_ path: String) throws -> UInt64 {
    var info = stat()
    guard stat(path, &info) == 0 else { throw FixtureFailure("stat \(path): \(String(cString: strerror(errno)))") }
    return UInt64(info.st_ino)
}

/// The inodes of every file descriptor process `pid` has open.
private func qemuInodes(_ pid: pid_t) throws -> Set<UInt64> {
    let names = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
    var inodes = Set<UInt64>()
    for name in names {
        var info = stat()
        if stat("/proc/\(pid)/fd/\(name)", &info) == 0 { inodes.insert(UInt64(info.st_ino)) }
    }
    return inodes
}

/// Waits (at most 10 s) for QEMU to create its QMP socket.
private func waitForSocket(_ path: String, pid: pid_t) async throws {
    for _ in 0..<200 where !FileManager.default.fileExists(atPath: path) {
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { throw FixtureFailure("QEMU exited with wait status \(status)") }
        try await Task.sleep(for: .milliseconds(50))
    }
    guard FileManager.default.fileExists(atPath: path) else { throw FixtureFailure("QEMU did not create \(path)") }
}

/// Runs `body` on its own thread and waits at most `seconds`; past that, `unblock` is called (to
/// release whatever `body` is stuck in) and the test fails instead of hanging.
private func runBounded<T: Sendable>(seconds: Int, unblock: @escaping @Sendable () -> Void, _ body: @escaping @Sendable () -> T) throws -> T {
    let done = DispatchSemaphore(value: 0)
    let box = ResultBox<T>()
    Thread.detachNewThread {
        box.set(body())
        done.signal()
    }
    if done.wait(timeout: .now() + .seconds(seconds)) == .timedOut {
        unblock()
        _ = done.wait(timeout: .now() + .seconds(5))
        Issue.record("blocked for more than \(seconds) s")
    }
    guard let value = box.get() else { throw FixtureFailure("still blocked") }
    return value
}

private final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T?
    func set(_ new: T) { lock.lock(); value = new; lock.unlock() }
    func get() -> T? { lock.lock(); defer { lock.unlock() }; return value }
}
