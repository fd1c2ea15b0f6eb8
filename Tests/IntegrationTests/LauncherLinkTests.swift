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

    @Test func theDebugLauncherLinksNoFullFoundation() throws {
        let found = try Self.markers(in: kvmLaunchBinary)
        #expect(found.contains("$s20FoundationEssentials"), "the search sees FoundationEssentials' symbols in \(kvmLaunchBinary)")
        #expect(found.isDisjoint(with: Self.forbidden), "kvm-launch links full Foundation or ICU again: \(found.sorted())")
    }

    /// The binary the image ships (`swift build -c release --static-swift-stdlib --product kvm-launch`,
    /// as `make image` and `make bench` build it): Foundation and ICU would be inside it.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: releaseBinary),
                   "no release build (.build/release/kvm-launch): `make image` or `make bench` builds it"))
    func theReleaseLauncherLinksNoFullFoundation() throws {
        let found = try Self.markers(in: Self.releaseBinary)
        #expect(found.contains("$s20FoundationEssentials"), "the search sees FoundationEssentials' symbols in \(Self.releaseBinary)")
        #expect(found.isDisjoint(with: Self.forbidden), "the release kvm-launch links full Foundation or ICU again: \(found.sorted())")
    }

    /// The shared libraries the dynamic loader would map for `binary` (its `DT_NEEDED` entries, `readelf -d`).
    static func neededLibraries(of binary: String) throws -> [String] {
        let result = try run(["readelf", "-d", binary], timeout: 60)
        return result.stdout.split(separator: "\n").compactMap { line in
            guard line.contains("(NEEDED)"), let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
    }

    /// Issue 15's start-up: the release launcher carries the C++ runtime inside (Package.swift's
    /// `launcherStartupLinking`, with `scripts/static-libstdcxx.sh`'s folder), so the loader neither maps nor
    /// relocates libstdc++ at every start. libgcc_s stays a dependency the loader sees: glibc's pthread_exit
    /// loads it at run time, and the `FROM scratch` image copies only what ldd lists.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: releaseBinary),
                   "no release build (.build/release/kvm-launch): `make image` or `make bench` builds it"))
    func theReleaseLauncherLoadsNoCxxRuntime() throws {
        let needed = try Self.neededLibraries(of: Self.releaseBinary)
        #expect(needed.contains { $0.hasPrefix("libc.so") }, "readelf shows \(Self.releaseBinary)'s libraries: \(needed)")
        #expect(needed.contains { $0.hasPrefix("libgcc_s.so") }, "libgcc_s must stay in ldd's closure (pthread_exit loads it): \(needed)")
        let cxx = needed.filter { $0.hasPrefix("libstdc++") }
        #expect(cxx.isEmpty, "the release kvm-launch loads \(cxx) again: build it after scripts/static-libstdcxx.sh (make image does)")
    }
}
