import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

extension EndToEndTests {
    /// Issue 15: more interfaces than a q35 machine's root bus has free slots (28). The NICs beyond share
    /// slots as multifunction devices (NICLayout); the real guest must see every one with the container
    /// interface's MAC and get its address by DHCP on each, and the container is restored after.
    @Test func fortyInterfacesReachTheGuestInSharedSlots() throws {
        try Self.requireImage()
        let count = 40
        let interfaces = (0..<count).map { index in
            ContainerFixture.Interface(name: "eth\(index)", addresses: ["10.77.\(index).2/24"], peerAddress: "10.77.\(index).1/24",
                                       defaultRoute: index == 0)
        }
        let fixture = try ContainerFixture(interfaces)
        defer { fixture.destroy() }
        let before = try fixture.state()
        let macs = try (0..<count).map { try fixture.mac(of: "eth\($0)") }

        let vm = try VMRun(fixture, environment: ["AUTO_ATTACH": "yes"])
        defer { vm.stop() }
        // The launcher's own command line has the shared slots.
        let nics = try vm.waitUntilReady(timeout: 600)
        #expect(vm.process.stderrLines.contains { $0.contains(",vectors=2,bus=pcie.0,addr=0x1d.0x0,multifunction=on") }, "the command line shares slots 29 and 30")
        #expect(nics.count == count, "the guest sees \(nics.count) of \(count) NICs")
        // Every NIC, matched by MAC: the container interface's MAC and its address, leased by DHCP.
        for index in 0..<count {
            let nic = nics.first { $0.mac == macs[index] }
            #expect(nic?.address == "10.77.\(index).2/24", "eth\(index) (\(macs[index])): \(nic.map { "\($0.fields)" } ?? "not in the guest")")
        }
        #expect(fixture.pingFromPeer("10.77.0.2"), "the first NIC answers")
        #expect(fixture.pingFromPeer("10.77.\(count - 1).2"), "the last NIC (in a shared slot) answers")

        vm.process.signal(SIGTERM)
        #expect(vm.process.waitForExit(timeout: 120) == 0, "stderr: \(vm.process.stderrLines.suffix(5))")
        try expectRestored(fixture, before)
    }
}
