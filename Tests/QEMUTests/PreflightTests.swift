import Foundation
import TestSupport
import Testing
import QEMU
import SystemPackage

@Suite struct PreflightTests {
    private func makeFile(_ path: String, mode: Int) throws {
        try (Data("#!/bin/sh\n".utf8)).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    @Test func findsTheDefaultLauncherInThePath() throws {
        let first = try TemporaryDirectory()
        let second = try TemporaryDirectory()
        // A non-executable file of the same name earlier in PATH is skipped.
        try makeFile(first.file("qemu-system-x86_64"), mode: 0o644)
        try makeFile(second.file("qemu-system-x86_64"), mode: 0o755)
        let path = "\(first.path)::\(second.path)/"
        #expect(try Preflight.resolveLauncher(nil, searchPath: path) == second.file("qemu-system-x86_64"))
        #expect(try Preflight.resolveLauncher("", searchPath: path) == second.file("qemu-system-x86_64"))
    }

    @Test func aLauncherNameIsSearchedAndAPathIsTakenAsItIs() throws {
        let directory = try TemporaryDirectory()
        try makeFile(directory.file("qemu-kvm"), mode: 0o755)
        #expect(try Preflight.resolveLauncher("qemu-kvm", searchPath: directory.path) == directory.file("qemu-kvm"))
        #expect(try Preflight.resolveLauncher(directory.file("qemu-kvm"), searchPath: "") == directory.file("qemu-kvm"))
    }

    @Test func missingOrNonExecutableLaunchersAreErrors() throws {
        let directory = try TemporaryDirectory()
        #expect(throws: PreflightError.launcherNotFound(name: "qemu-system-x86_64", searchPath: directory.path)) {
            try Preflight.resolveLauncher(nil, searchPath: directory.path)
        }
        try makeFile(directory.file("plain"), mode: 0o644)
        #expect(throws: PreflightError.launcherNotExecutable(path: directory.file("plain"))) {
            try Preflight.resolveLauncher(directory.file("plain"), searchPath: "/usr/bin")
        }
        #expect(throws: PreflightError.launcherMissing(path: directory.path + "/none")) {
            try Preflight.resolveLauncher(directory.path + "/none", searchPath: "/usr/bin")
        }
        // A directory is not a launcher, even with x bits.
        #expect(throws: PreflightError.launcherNotExecutable(path: directory.path)) {
            try Preflight.resolveLauncher(directory.path, searchPath: "/usr/bin")
        }
    }

    @Test func theRealQEMUIsFoundInTheSystemPath() throws {
        #expect(try Preflight.resolveLauncher(nil, searchPath: "/usr/local/bin:/usr/bin:/bin") == qemuBinary)
    }

    @Test func errorDescriptionsAreOneLineWithAnAdvice() {
        let errors: [PreflightError] = [
            .launcherNotFound(name: "q", searchPath: "/bin"), .launcherNotExecutable(path: "/q"),
            .imageMissing(candidates: ["/image/image.qcow2", "/image/image"]), .imageNotAFile(path: "/image", kind: "a directory"),
            .launcherMissing(path: "/q"), .memoryBeyondMachine(requested: 2, available: 1),
            .imageFormatMismatch(path: "/i.qcow2", expected: .qcow2, found: .raw, stated: false),
            .imageFormatNotStated(path: "/i", found: .qcow2),
            .imageReferenceOutside(path: "/i", role: "backing file", reference: "/etc/shadow", resolved: "/etc/shadow", folder: "/image"),
            .imageReferenceUnusable(path: "/i", role: "data file", reference: "d", reason: "it does not exist"),
            .imageUnreadable(path: "/i", errno: .permissionDenied), .imageUnreadable(path: "/i", errno: .readOnlyFileSystem, forWriting: true), .imageEmpty(path: "/i"),
            .imageTooSmall(path: "/i", size: 3), .imageHeaderTruncated(path: "/i", format: .qcow2),
            .imageHeaderCorrupt(path: "/i", format: .qcow2, detail: "x"),
        ]
        for error in errors {
            #expect(!error.description.contains("\n"))
            #expect(error.description.contains(": "))
        }
        #expect(PreflightError.imageMissing(candidates: ["/image/image.qcow2", "/image/image"]).description
            .contains("/image/image.qcow2 or /image/image"))
    }
}
