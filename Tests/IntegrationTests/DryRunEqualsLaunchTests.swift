import Foundation
import Testing
import TestSupport

/// Issue 12's "done when": `--dry-run --json` prints exactly the QEMU command line the launch runs.
/// The real binary plans in a fixture namespace with `--dry-run --json`; then the real launch runs
/// with a `LAUNCHER` that records its argv (NUL-separated, so no argument can hide another) and the
/// descriptors it was handed, and exits. The two argument arrays must be equal, descriptor numbers
/// included, and every descriptor the arguments name must really be open in the launched program.
@Suite(.serialized, .enabled(if: isRoot, needsRootReason))
struct DryRunEqualsLaunchTests {
    /// Two interfaces, so the NICs' order and each one's descriptor numbers are compared.
    static let interfaces = [
        ContainerFixture.Interface(name: "eth0", addresses: ["10.61.0.5/24"], peerAddress: "10.61.0.1/24", defaultRoute: true),
        ContainerFixture.Interface(name: "eth1", addresses: ["10.62.0.5/24"], peerAddress: "10.62.0.1/24", mtu: 1400),
    ]

    @Test(arguments: ["macvtap", "bridge"])
    func theDryRunsArgumentsAreTheLaunchedOnes(_ mode: String) throws {
        let fixture = try ContainerFixture(Self.interfaces)
        defer { fixture.destroy() }
        let record = fixture.directory.appendingPathComponent("argv").path
        let descriptors = fixture.directory.appendingPathComponent("fds").path
        let launcher = fixture.directory.appendingPathComponent("record-qemu").path
        try writeFile(launcher, """
            #!/bin/sh
            printf '%s\\000' "$0" "$@" > \(record)
            ls /proc/$$/fd > \(descriptors)
            """, executable: true)
        let environment = try RecoveryIntegrationTests.environment(fixture, mode: mode, ["LAUNCHER": launcher])

        let plan = try RecoveryIntegrationTests.dryRun(fixture, environment)
        let planned = try #require(plan["qemu"] as? [String], "the dry-run prints QEMU's arguments: \(plan.keys.sorted())")
        #expect(!FileManager.default.fileExists(atPath: record), "the dry-run started nothing")

        let launch = try fixture.container.exec([kvmLaunchBinary], environment: environment, check: false)
        #expect(launch.stderr.contains("interfaces are restored"), "the launch ran to its end: \(launch.stderr)")
        let recorded = try readFile(record).split(separator: "\0", omittingEmptySubsequences: false).dropLast().map(String.init)

        #expect(recorded == planned, "dry-run and launch differ:\n\(Self.difference(planned, recorded))\nlaunch: \(launch.stderr)")
        // The descriptors the arguments name (`fd=N`, `fds=N:M`, `vhostfd=N`) were open in the launched program.
        let open = Set(try readFile(descriptors).split(whereSeparator: \.isWhitespace).compactMap { Int32($0) })
        let named = Self.descriptorNumbers(in: planned)
        #expect(!named.isEmpty, "the NICs (and the disk) are passed as descriptors: \(planned)")
        #expect(named.isSubset(of: open), "named \(named.sorted()), open in the launched program \(open.sorted())")
    }

    /// Every number after `fd=`, `fds=` (colon-separated) and `vhostfd(s)=` in the arguments.
    static func descriptorNumbers(in arguments: [String]) -> Set<Int32> {
        var numbers = Set<Int32>()
        for argument in arguments {
            for option in argument.split(separator: ",") {
                let pair = option.split(separator: "=", maxSplits: 1)
                guard pair.count == 2, ["fd", "fds", "vhostfd", "vhostfds"].contains(pair[0]) else { continue }
                numbers.formUnion(pair[1].split(separator: ":").compactMap { Int32($0) })
            }
        }
        return numbers
    }

    /// The first position where the arrays differ, with both sides' arguments there.
    static func difference(_ planned: [String], _ recorded: [String]) -> String {
        let index = zip(planned, recorded).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(planned.count, recorded.count)
        return "at argument \(index): dry-run \(planned.dropFirst(index).prefix(3)) launch \(recorded.dropFirst(index).prefix(3))"
            + " (lengths \(planned.count) and \(recorded.count))"
    }
}
