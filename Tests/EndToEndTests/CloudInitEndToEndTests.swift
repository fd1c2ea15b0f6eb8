import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A stock Debian 12 cloud guest (image/cloud/build.sh: debootstrap, Debian's cloud-init, no network
/// configuration of its own) booted by kvm-launch with the NoCloud seed it builds: cloud-init in the
/// guest applies the host name, the static addresses and routes (Calico's `/32` with an on-link
/// gateway), its IPv6 address and default route (through the learned link-local address of a global
/// gateway), the MTU and the SSH key, and the peer logs in with that key.
@Suite(.serialized, .enabled(if: isRoot, "needs root: makes network namespaces and macvtaps, and runs QEMU"))
struct CloudInitEndToEndTests {
    static var cloudGuestImage: String { repositoryRoot.appendingPathComponent("image/out/cloud-guest.qcow2").path }

    @Test func cloudInitConfiguresAStockGuestFromTheSeed() throws {
        guard FileManager.default.fileExists(atPath: Self.cloudGuestImage) else {
            throw EndToEndTests.Failure("no cloud guest at \(Self.cloudGuestImage): run image/cloud/build.sh (make test does it first)")
        }
        // Calico's IPv4 shape plus a Docker-style IPv6 address whose gateway is global on the link.
        var shape = ContainerFixture.Interface.calico(address: "10.88.0.7")
        shape.addresses.append("fd00:6b73::7/64")
        shape.peerAddresses.append("fd00:6b73::1/64")
        shape.routes.append("default via fd00:6b73::1")
        let fixture = try ContainerFixture([shape])
        defer { fixture.destroy() }
        let peerLine = try fixture.peer.exec(["ip", "-6", "-o", "addr", "show", "dev", fixture.peerLink(of: "eth0") ?? "p0", "scope", "link"]).stdout
        let peerLinkLocal = String(try #require(peerLine.split(separator: " ").dropFirst(3).first?.split(separator: "/").first))
        // A jumbo-ish MTU that only network-config (not a DHCP option the guest never asks for) can carry.
        try fixture.container.ip("link set eth0 mtu 1400")
        try fixture.peer.ip("link set \(fixture.peerLink(of: "eth0") ?? "p0") mtu 1400")
        let before = try fixture.state()

        let directory = fixture.directory.path
        try FileManager.default.copyItem(atPath: Self.cloudGuestImage, toPath: "\(directory)/cloud-guest.qcow2")
        try run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "cloud-guest.qcow2", "-F", "qcow2", "\(directory)/disk.qcow2"])
        try run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kl-cloud-test", "-f", "\(directory)/id"])
        let publicKey = try String(contentsOfFile: "\(directory)/id.pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let userData = """
            #cloud-config
            runcmd:
              - [sh, -c, "echo KVMLAUNCH-CLOUD-READY host=$(hostname) mtu=$(cat /sys/class/net/eth0/mtu) > /dev/ttyS0"]
            """

        let vm = try EndToEndTests.VMRun(fixture, environment: [
            "AUTO_ATTACH": "yes", "VM_MEMORY": "1024M", "VM_HOSTNAME": "cloudy", "VM_SHUTDOWN_TIMEOUT": "120",
            "SSH_AUTHORIZED_KEYS": publicKey, "CLOUD_INIT_USER_DATA": userData,
        ], image: "\(directory)/disk.qcow2")
        defer { vm.stop() }
        guard let ready = vm.process.waitFor("KVMLAUNCH-CLOUD-READY", timeout: 600) else {
            Issue.record("cloud-init did not run the seed's user data; console:\n\(vm.process.lines.suffix(40).joined(separator: "\n"))\nstderr:\n\(vm.process.stderrLines.suffix(20).joined(separator: "\n"))")
            return
        }
        #expect(ready.contains("host=cloudy"), "local-hostname from meta-data: \(ready)")
        #expect(ready.contains("mtu=1400"), "MTU from network-config: \(ready)")
        // cloud-init says where its data came from when it finishes (just after runcmd).
        #expect(vm.process.waitFor("Datasource DataSourceNoCloud", timeout: 120) != nil, "cloud-init found the seed")
        #expect(!vm.process.stderrLines.contains { $0.contains("runcmd") }, "the user data never reaches the log")

        // The peer (the node) logs in with the key and reads what cloud-init configured.
        let ssh = try fixture.peer.exec([
            "timeout", "90", "ssh", "-i", "\(directory)/id", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=30", "-o", "BatchMode=yes", "debian@10.88.0.7",
            "hostname; cat ~/.ssh/authorized_keys; ip -4 -o addr show dev eth0; ip -4 route show;"
                + " ip -6 -o addr show dev eth0 scope global; ip -6 route show default; cat /sys/class/net/eth0/mtu",
        ], check: false)
        #expect(ssh.status == 0, "ssh login with the seed's key: \(ssh.stderr)")
        let output = ssh.stdout
        #expect(output.hasPrefix("cloudy\n"))
        #expect(output.contains(publicKey), "authorized_keys holds the key")
        #expect(output.contains("inet 10.88.0.7/32"), "the static /32: \(output)")
        #expect(output.contains("169.254.1.1 dev eth0 proto static scope link"), "the link-scope route to the gateway: \(output)")
        #expect(output.contains("default via 169.254.1.1 dev eth0 proto static onlink"), "the default route, on-link: \(output)")
        #expect(output.hasSuffix("1400\n"))
        // IPv6 from network-config alone (no DHCPv6 client, RAs ignored): the address and the default
        // route through the gateway's link-local address, which the launcher learned on the link.
        #expect(output.contains("inet6 fd00:6b73::7/64"), "the static IPv6 address: \(output)")
        #expect(output.contains("default via \(peerLinkLocal) dev eth0"), "the IPv6 default route via the gateway's link-local address: \(output)")
        // The peer finds the VM by a Neighbor Solicitation to the address's solicited-node group,
        // which a macvtap passes to the VM only because kvm-launch makes it take all multicast.
        #expect(fixture.pingFromPeer("fd00:6b73::7", attempts: 5), "the peer reaches the VM over IPv6")

        vm.process.signal(SIGTERM)
        let status = vm.process.waitForExit(timeout: 180)
        #expect(status == 0, "graceful stop: \(vm.process.stderrLines.suffix(5))")
        #expect(try fixture.state() == before, "the container is restored")
    }
}
