import Foundation
import Testing
import TestSupport

/// Issue 15 item 1: `kvm-launch` links FoundationEssentials only, never full Foundation nor ICU (its
/// ~34 MB of data and its start-up cost). Looked for in the built binaries' bytes: full Foundation's
/// Swift symbols are mangled `$s10Foundation…` (imported ones too, in a dynamic build), and ICU's
/// data is named `icudt<version>` (also in a stripped binary). `$s20FoundationEssentials` must be
/// found, which proves the search sees symbol names at all.
@Suite struct LauncherLinkTests {
    static let forbidden = ["$s10Foundation", "icudt"]
    static let releaseBinary = repositoryRoot.appendingPathComponent(".build/release/kvm-launch").path

    /// The markers of `forbidden` and `$s20FoundationEssentials` found in `binary` (the first of each).
    static func markers(in binary: String) throws -> Set<String> {
        let result = try run(["grep", "-a", "-o", "-F", "-e", "$s20FoundationEssentials"] + forbidden.flatMap { ["-e", $0] } + [binary],
                             check: false, timeout: 60)
        #expect(result.status == 0 || result.status == 1, "grep failed on \(binary): \(result.stderr)")
        return Set(result.stdout.split(separator: "\n").map { marker in
            forbidden.first { marker.hasPrefix($0) } ?? String(marker)
        })
    }

    /// Expects FoundationEssentials' symbols and none of `forbidden` in `binary` (`what` names it in failures).
    static func expectFoundationEssentialsOnly(_ binary: String, _ what: String) throws {
        let found = try markers(in: binary)
        #expect(found.contains("$s20FoundationEssentials"), "the search sees FoundationEssentials' symbols in \(binary)")
        #expect(found.isDisjoint(with: forbidden), "\(what) links full Foundation or ICU again: \(found.sorted())")
    }

    @Test func theDebugLauncherLinksNoFullFoundation() throws {
        try Self.expectFoundationEssentialsOnly(kvmLaunchBinary, "kvm-launch")
    }

    /// The binary the image ships (`swift build -c release --static-swift-stdlib --product kvm-launch`,
    /// as `make image` and `make bench` build it): Foundation and ICU would be inside it.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: releaseBinary),
                   "no release build (.build/release/kvm-launch): `make image` or `make bench` builds it"))
    func theReleaseLauncherLinksNoFullFoundation() throws {
        try Self.expectFoundationEssentialsOnly(Self.releaseBinary, "the release kvm-launch")
    }

    /// `readelf` on `binary` with `option` (`-h`, `-l`, `-d`), its standard output.
    static func readelf(_ option: String, _ binary: String) throws -> String {
        try run(["readelf", "-W", option, binary], timeout: 60).stdout
    }

    /// Issue 15's start-up: the release launcher is one static position-independent executable (Package.swift's
    /// `launcherStartupLinking`): no dynamic loader, no shared library to map and relocate at each start, still
    /// placed at a random address (ELF type DYN). Built without `--disable-local-rpath` it would carry a run path,
    /// which glibc's static start-up refuses: it has to start and answer `--version`.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: releaseBinary),
                   "no release build (.build/release/kvm-launch): `make image` or `make bench` builds it"))
    func theReleaseLauncherIsOneStaticPIE() throws {
        let header = try Self.readelf("-h", Self.releaseBinary)
        #expect(header.contains("DYN (Position-Independent Executable file)"), "a PIE, randomised by ASLR: \(header)")
        let segments = try Self.readelf("-l", Self.releaseBinary)
        #expect(!segments.contains("INTERP"), "no dynamic loader (PT_INTERP): \(segments)")
        #expect(segments.contains("GNU_EH_FRAME"), "the unwinder's table (pthread_exit unwinds through it): \(segments)")
        let dynamic = try Self.readelf("-d", Self.releaseBinary)
        #expect(!dynamic.contains("(NEEDED)"), "no shared library: \(dynamic)")
        #expect(!dynamic.contains("(RUNPATH)") && !dynamic.contains("(RPATH)"),
                "a run path stops a static PIE at start: build with --disable-local-rpath (make image does): \(dynamic)")
        let expected = try run([kvmLaunchBinary, "--version"], timeout: 60).stdout
        let version = try run([Self.releaseBinary, "--version"], check: false, timeout: 60)
        #expect(version.status == 0 && version.stdout == expected && !expected.isEmpty,
                "the release kvm-launch starts and answers like the debug one (\(expected)): \(version.status) \(version.stdout) \(version.stderr)")
    }
}

/// Issue 15 item 7: the config agent `kvm-launch-config` links FoundationEssentials only too (its etcd client is
/// swift-nio's HTTP/1.1 and NIOSSL, not AsyncHTTPClient, whose NIOFoundationCompat brought full Foundation and
/// 34 MB of ICU data into the image). Same markers as ``LauncherLinkTests``.
@Suite struct ConfigAgentLinkTests {
    static let debugBinary = productsDirectory.appendingPathComponent("kvm-launch-config").path
    static let releaseBinary = repositoryRoot.appendingPathComponent(".build/release/kvm-launch-config").path

    @Test func theDebugConfigAgentLinksNoFullFoundation() throws {
        try LauncherLinkTests.expectFoundationEssentialsOnly(Self.debugBinary, "kvm-launch-config")
    }

    /// The binary the image ships (`swift build -c release --static-swift-stdlib --product kvm-launch-config`).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: releaseBinary),
                   "no release build (.build/release/kvm-launch-config): `make image` or `make bench` builds it"))
    func theReleaseConfigAgentLinksNoFullFoundation() throws {
        try LauncherLinkTests.expectFoundationEssentialsOnly(Self.releaseBinary, "the release kvm-launch-config")
    }
}
