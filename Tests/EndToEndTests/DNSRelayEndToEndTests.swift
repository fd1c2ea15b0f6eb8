import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Issue 11 item 3 with the real guest: the container's only name server is on its loopback
/// (127.0.0.11, as on a Docker user-defined network), and the guest resolves a name only that
/// server knows, through kvm-launch's relay, with busybox's nslookup.
@Suite(.serialized, .enabled(if: isRoot, "needs root: makes network namespaces and macvtaps, and runs QEMU"))
struct DNSRelayEndToEndTests {
    /// `bridges`: USE_NET_BRIDGES, so the relay listens on the bridge instead of the macvlan.
    @Test(arguments: ["no", "yes"])
    func guestResolvesThroughTheContainersLoopbackResolver(bridges: String) async throws {
        try EndToEndTests.requireImage()
        let fixture = try ContainerFixture(EndToEndTests.oneInterface, resolvConf: "nameserver 127.0.0.11\nsearch example.test\n")
        defer { fixture.destroy() }
        let resolver = try await fixture.container.onThread { try TestResolver(address: "127.0.0.11") }
        resolver.start()
        defer { resolver.stop() }
        let before = try fixture.state()

        let vm = try EndToEndTests.VMRun(fixture, environment: ["AUTO_ATTACH": "yes", "USE_NET_BRIDGES": bridges])
        defer { vm.stop() }
        let nics = try vm.waitUntilReady()
        try #require(nics.count == 1)
        // The lease names the relay on the container-side link-local address, not 127.0.0.11.
        #expect(nics[0].dns?.hasPrefix("169.254.") == true, "guest NIC: \(nics[0])")

        let mark = vm.process.lines.count
        // The status line is computed, so the echoed command itself cannot match it.
        vm.process.send("nslookup vm-only.test; echo nslookup-$((40+2))-status-$?\n")
        let done = vm.process.waitFor("nslookup-42-status-", after: mark, timeout: 60)
        let output = vm.process.lines.dropFirst(mark).joined(separator: "\n")
        #expect(done?.hasSuffix("nslookup-42-status-0") == true, "console:\n\(output)")
        #expect(output.contains("10.99.0.1"), "console:\n\(output)")
        #expect(resolver.received.load(ordering: .relaxed) > 0, "the container's resolver was asked")

        vm.process.signal(SIGTERM)
        #expect(vm.process.waitForExit(timeout: 60) == 0, "stderr: \(vm.process.stderrLines.suffix(5))")
        let after = try fixture.state()
        #expect(after == before, "the container's network is restored")
    }
}
