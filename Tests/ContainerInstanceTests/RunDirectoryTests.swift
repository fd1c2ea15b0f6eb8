import ContainerInstance
import Foundation
import QEMU
import SystemPackage
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A private scratch directory under /tmp (others may enter it, as /run), removed at the end.
func Scratch() throws -> TemporaryDirectory {
    let directory = try TemporaryDirectory()
    chmod(directory.path, 0o755)
    return directory
}

private func mode(_ path: String) -> UInt32 {
    var info = stat()
    lstat(path, &info)
    return UInt32(info.st_mode) & 0o7777
}

private func exists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
}

@Suite struct RunDirectoryTests {
    @Test func twoLaunchersSharingABaseGetDistinctPrivateLockedDirectories() throws {
        let scratch = try Scratch()
        let base = scratch.path + "/run/kvm-launch"
        let first = try RunDirectory(base: base)
        let second = try RunDirectory(base: base)
        #expect(first.path != second.path)
        #expect(first.path.hasPrefix(base + "/vm-") && RunDirectory.isLauncherName(first.name))
        #expect(mode(first.path) == 0o700 && mode(second.path) == 0o700)
        #expect(mode(base) == 0o700, "a base kvm-launch creates is its own")
        // Both are live: cleanup leaves them alone.
        #expect(RunDirectory.removeAbandoned(in: base, deviceNodePrefix: "kltap").isEmpty)
        #expect(exists(first.path) && exists(second.path))
        first.remove()
        #expect(!exists(first.path), "removed at teardown")
        #expect(exists(second.path), "the other launcher's directory stays")
        first.remove()  // idempotent
        second.remove()
        #expect(try FileManager.default.contentsOfDirectory(atPath: base).isEmpty)
    }

    @Test func theLockIsHeldWhileTheLauncherLives() throws {
        let scratch = try Scratch()
        let directory = try RunDirectory(base: scratch.path + "/base")
        let fd = open(directory.path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK)
        directory.remove()
    }

    @Test func abandonedDirectoriesAreRemovedLiveAndForeignOnesAreNot() throws {
        let scratch = try Scratch()
        let base = scratch.path + "/base"
        let live = try RunDirectory(base: base)
        defer { live.remove() }
        // A launcher that was SIGKILLed: its directory, with a node left, and no lock.
        let dead = base + "/vm-00000000000000aa"
        mkdir(dead, 0o700)
        FileManager.default.createFile(atPath: dead + "/kltap7", contents: nil)
        // Not ours by name, by content, or by kind: left alone.
        let otherName = base + "/vm-something"
        mkdir(otherName, 0o700)
        let strangeContent = base + "/vm-00000000000000bb"
        mkdir(strangeContent, 0o700)
        FileManager.default.createFile(atPath: strangeContent + "/notes.txt", contents: nil)
        let target = scratch.path + "/elsewhere"
        mkdir(target, 0o700)
        FileManager.default.createFile(atPath: target + "/kltap1", contents: nil)
        symlink(target, base + "/vm-00000000000000cc")

        let removed = RunDirectory.removeAbandoned(in: base, deviceNodePrefix: "kltap")
        #expect(removed == ["vm-00000000000000aa"])
        #expect(!exists(dead))
        #expect(exists(live.path) && exists(otherName) && exists(strangeContent + "/notes.txt"))
        #expect(exists(target + "/kltap1"), "nothing is removed through a symbolic link")
    }

    /// The seed file (VM_BACKEND=libvirt): written once, read-only, never through a link or over an entry,
    /// removed with the directory; a killed launcher's directory holding it is cleaned up like one with nodes.
    @Test func aFileIsWrittenExclusivelyAndGoesWithTheDirectory() throws {
        let scratch = try Scratch()
        let base = scratch.path + "/base"
        let directory = try RunDirectory(base: base)
        let path = try directory.createFile(named: RunDirectory.seedFileName, contents: Array("cidata".utf8))
        #expect(path == directory.path + "/" + RunDirectory.seedFileName)
        #expect(FileManager.default.contents(atPath: path) == Data("cidata".utf8))
        #expect(mode(path) == 0o400)
        #expect(throws: RunDirectoryError.system(operation: "create", path: path, errno: .fileExists),
                "an existing entry is never reused") {
            try directory.createFile(named: RunDirectory.seedFileName, contents: [1])
        }
        // A link planted under the name: refused, its target untouched.
        let target = scratch.path + "/target"
        FileManager.default.createFile(atPath: target, contents: Data("keep".utf8))
        symlink(target, directory.path + "/planted")
        #expect(throws: RunDirectoryError.system(operation: "create", path: directory.path + "/planted", errno: .fileExists),
                "never through a symbolic link") {
            try directory.createFile(named: "planted", contents: [1])
        }
        #expect(FileManager.default.contents(atPath: target) == Data("keep".utf8))
        #expect(throws: RunDirectoryError.system(operation: "write", path: directory.path + "/../escape", errno: .invalidArgument)) {
            try directory.createFile(named: "../escape", contents: [1])
        }
        #expect(!exists(directory.path + "/../escape"))
        directory.remove()
        #expect(!exists(path) && !exists(directory.path), "removed at teardown")

        // A SIGKILLed launcher's directory with its seed and a node: abandoned, removed.
        let dead = base + "/vm-00000000000000dd"
        mkdir(dead, 0o700)
        FileManager.default.createFile(atPath: dead + "/" + RunDirectory.seedFileName, contents: Data([1]))
        FileManager.default.createFile(atPath: dead + "/kltap3", contents: nil)
        #expect(RunDirectory.removeAbandoned(in: base, deviceNodePrefix: "kltap") == ["vm-00000000000000dd"])
        #expect(!exists(dead))
    }

    @Test func aSymbolicLinkOnTheWayIsRefusedAndNothingIsMadeAtItsTarget() throws {
        let scratch = try Scratch()
        let target = scratch.path + "/target"
        mkdir(target, 0o700)
        symlink(target, scratch.path + "/link")
        #expect(throws: RunDirectoryError.symbolicLink(scratch.path + "/link")) { try RunDirectory(base: scratch.path + "/link") }
        #expect(throws: RunDirectoryError.symbolicLink(scratch.path + "/link")) { try RunDirectory(base: scratch.path + "/link/kvm-launch") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: target).isEmpty)
        // A dangling link is refused too, rather than created through.
        symlink(scratch.path + "/nowhere", scratch.path + "/dangling")
        #expect(throws: RunDirectoryError.symbolicLink(scratch.path + "/dangling")) { try RunDirectory(base: scratch.path + "/dangling") }
        #expect(!exists(scratch.path + "/nowhere"))
    }

    @Test func aBaseOthersMayWriteToOrThatIsNotADirectoryIsRefused() throws {
        let scratch = try Scratch()
        let open = scratch.path + "/open"
        mkdir(open, 0o777)
        chmod(open, 0o777)
        #expect(throws: RunDirectoryError.writableByOthers(path: open, mode: UInt32(S_IFDIR) | 0o777)) { try RunDirectory(base: open) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: open).isEmpty)
        let file = scratch.path + "/file"
        FileManager.default.createFile(atPath: file, contents: nil)
        #expect(throws: RunDirectoryError.notDirectory(file)) { try RunDirectory(base: file) }
        #expect(throws: RunDirectoryError.notDirectory(file)) { try RunDirectory(base: file + "/below") }
    }

    @Test(.enabled(if: isRoot, "needs root: gives a directory to another user"))
    func componentsOwnedBySomeoneElseAreRefused() throws {
        let scratch = try Scratch()
        let foreign = scratch.path + "/foreign"
        mkdir(foreign, 0o755)
        chown(foreign, 65534, 65534)
        #expect(throws: RunDirectoryError.foreignOwner(path: foreign, owner: 65534)) { try RunDirectory(base: foreign + "/kvm-launch") }
        #expect(throws: RunDirectoryError.foreignOwner(path: foreign, owner: 65534)) { try RunDirectory(base: foreign) }
        #expect(!exists(foreign + "/kvm-launch"))
        // A directory of another user inside the base is not taken as an abandoned one.
        let base = scratch.path + "/base"
        let live = try RunDirectory(base: base)
        defer { live.remove() }
        let theirs = base + "/vm-00000000000000dd"
        mkdir(theirs, 0o700)
        chown(theirs, 65534, 65534)
        #expect(RunDirectory.removeAbandoned(in: base, deviceNodePrefix: "kltap").isEmpty)
        #expect(exists(theirs))
    }

    @Test func pathChecksBeforeAnythingIsMade() {
        #expect(throws: RunDirectoryError.notAbsolute("relrun")) { try RunDirectory.validate(base: "relrun") }
        #expect(throws: RunDirectoryError.dotComponent("/run/../etc")) { try RunDirectory.validate(base: "/run/../etc") }
        #expect(throws: RunDirectoryError.notAbsolute("relrun")) { try RunDirectory(base: "relrun") }
        #expect(!exists("relrun"))
        #expect(throws: Never.self) { try RunDirectory.validate(base: "/run/kvm-launch") }
    }

    @Test func namesTheCleanupConsiders() {
        #expect(RunDirectory.isLauncherName("vm-0123456789abcdef"))
        #expect(!RunDirectory.isLauncherName("vm-0123456789ABCDEF"))
        #expect(!RunDirectory.isLauncherName("vm-0123456789abcde"))
        #expect(!RunDirectory.isLauncherName("qmp.sock"))
        #expect(!RunDirectory.isLauncherName("taps"))
    }
}

extension RunDirectoryTests {
    /// A system call's failure keeps its `Errno` and prints the operation, the path and the errno's text.
    @Test func systemFailureKeepsItsErrno() throws {
        let scratch = try Scratch()
        let directory = try RunDirectory(base: scratch.path + "/base")
        defer { directory.remove() }
        _ = try directory.createFile(named: "taken", contents: [1])
        do {
            _ = try directory.createFile(named: "taken", contents: [2])
            Issue.record("a second file under the same name was created")
        } catch {
            guard case .system(let operation, let path, let errno) = error else {
                Issue.record("not a system-call failure: \(error)")
                return
            }
            #expect(operation == "create" && path == directory.path + "/taken" && errno == .fileExists)
            #expect(error.description == "cannot create \(directory.path)/taken: File exists")
        }
    }
}

@Suite struct QMPSocketNameTests {
    @Test func theNameIsAbstractAndFollowsThePIDNamespace() throws {
        let name = try #require(QMPSocketName.current())
        let inode = try #require(Namespaces.inode(of: "pid"))
        #expect(name == "@kvm-launch/qmp/pidns-\(inode)")
        #expect(QMPAddress(name).isAbstract)
        #expect(QMPSocketName.forPIDNamespace(1) != QMPSocketName.forPIDNamespace(2))
        #expect(name.utf8.count <= QMPAddress.maximumLength)
    }

    @Test func anAbstractSocketIsSeenAsListeningOnlyWhileBound() throws {
        let name = "kvm-launch-test/sharedrun/\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(!QMPClient.isListening(at: "@" + name))
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = [UInt8(0)] + Array(name.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(2 + bytes.count)) }
        }
        try #require(bound == 0)
        #expect(listen(fd, 4) == 0)
        #expect(QMPClient.isListening(at: "@" + name))
        #expect(!QMPClient.isListening(at: "@" + name + "x"), "a longer name is another socket")
        close(fd)
        #expect(!QMPClient.isListening(at: "@" + name))
    }
}
