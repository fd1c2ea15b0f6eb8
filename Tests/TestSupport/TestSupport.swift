import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Whether the tests run as root; tests that make namespaces are enabled only then.
package let isRoot = getuid() == 0

/// The reason shown when a root-only test is skipped.
package let needsRootReason: Comment = "needs root: creates network namespaces and links (CI runs as root)"

/// Where SwiftPM put the built products (`.build/debug`): the directory of the running test binary.
package var productsDirectory: URL {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
}

/// The built `kvm-launch` binary.
package var kvmLaunchBinary: String { productsDirectory.appendingPathComponent("kvm-launch").path }

/// The built `kvm-launch-libvirt` binary (the launcher with VM_BACKEND=libvirt, which `kvm-launch` execs).
package var kvmLaunchLibvirtBinary: String { productsDirectory.appendingPathComponent("kvm-launch-libvirt").path }

/// A short random suffix for names that must not clash between parallel tests.
package func uniqueSuffix() -> String {
    String(UInt32.random(in: 0..<UInt32.max), radix: 36)
}

/// A throwaway network namespace (`/run/netns/NAME`), deleted by ``destroy()``.
///
/// Use with `defer { namespace.destroy() }` right after creating it, so it goes also when the test fails.
package final class TestNamespace: Sendable {
    package let name: String
    package var path: String { "/run/netns/\(name)" }

    package init(prefix: String = "kl") throws {
        name = "\(prefix)-\(uniqueSuffix())"
        try run(["ip", "netns", "add", name])
        do {
            try exec(["ip", "link", "set", "lo", "up"])
            // No duplicate address detection: link-local IPv6 addresses are final at once, so a
            // snapshot taken right after setup does not differ from a later one in "tentative".
            try exec(["sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"])
        } catch {
            destroy()
            throw error
        }
    }

    /// A namespace made elsewhere (by name), for ``exec(_:environment:check:)`` and ``destroy()``.
    package init(existing name: String) {
        self.name = name
    }

    /// Runs a command inside the namespace.
    @discardableResult
    package func exec(_ arguments: [String], environment: [String: String]? = nil, check: Bool = true) throws -> ProcessResult {
        try run(["ip", "netns", "exec", name] + arguments, environment: environment, check: check)
    }

    /// Runs `ip ARGS` inside the namespace (fixture building only; product code never runs ip).
    @discardableResult
    package func ip(_ arguments: String) throws -> ProcessResult {
        try exec(["ip"] + arguments.split(separator: " ").map(String.init))
    }

    /// Two namespaces (`first`- and `second`-prefixed); when the second cannot be made the first goes.
    package static func pair(_ first: String, _ second: String) throws -> (TestNamespace, TestNamespace) {
        let one = try TestNamespace(prefix: first)
        do {
            return (one, try TestNamespace(prefix: second))
        } catch {
            one.destroy()
            throw error
        }
    }

    /// A veth pair: `name` here, `peerName` in `peer` (with `peerMAC` when given).
    package func addVeth(_ name: String, peer: TestNamespace, peerName: String, peerMAC: String? = nil) throws {
        try run(["ip", "-n", self.name, "link", "add", name, "type", "veth", "peer", "name", peerName, "netns", peer.name]
                + (peerMAC.map { ["address", $0] } ?? []))
    }

    /// Kills whatever still runs in the namespace (a client that daemonised), then deletes it and every
    /// link in it.
    package func destroy() {
        let pids = (try? run(["ip", "netns", "pids", name], check: false))?.stdout ?? ""
        for pid in pids.split(whereSeparator: \.isNewline).compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
        _ = try? run(["ip", "netns", "del", name], check: false)
    }
}

/// Polls `condition` every 50 ms until it holds or `seconds` pass; returns whether it held. For
/// conditions nothing signals (a log line, a file, a port); never a timed assertion.
package func eventually(within seconds: Double = 15, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// QEMU and its image tool, as Debian installs them.
package let qemuBinary = "/usr/bin/qemu-system-x86_64"
package let qemuImg = "/usr/bin/qemu-img"

/// A fuzz mutation of `input`: for each step, by `kinds[step]`, flip a byte, set it, insert one, remove
/// one, or cut the input there; `positions` and `values` (one per step) say where and what.
package func mutateBytes(_ input: [UInt8], kinds: [Int], positions: [Int], values: [UInt8]) -> [UInt8] {
    var bytes = input
    for (step, kind) in kinds.enumerated() {
        let position = bytes.isEmpty ? 0 : positions[step] % bytes.count
        switch kind {
        case 0 where !bytes.isEmpty: bytes[position] ^= max(values[step], 1)
        case 1 where !bytes.isEmpty: bytes[position] = values[step]
        case 2: bytes.insert(values[step], at: position)
        case 3 where !bytes.isEmpty: bytes.remove(at: position)
        default: bytes = Array(bytes.prefix(position))
        }
    }
    return bytes
}
