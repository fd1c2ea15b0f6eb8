import DHCPServer
import IPv6Server
import Foundation
import Logging
import NetworkTypes
import TestSupport
import Testing

/// The server's life cycle and the less common exchanges, with real clients where one can
/// drive the exchange (renewal, INIT-REBOOT after a restart, NAK, DECLINE, bridge).
@Suite(.enabled(if: isRoot, "needs root: network namespaces, veth pairs and raw sockets"))
struct DHCPServerScenarioTests {
    typealias Conformance = DHCPClientConformanceTests

    @Test func restartedServerAcksTheRememberedLeaseAtOnce() async throws {
        try await withFixture { fixture in
            let lease = Conformance.podLease(for: fixture.clientMAC)
            let (first, _) = try await withServer(fixture, lease: lease) { try await DHCPClient.dhclient.acquire(on: fixture) }
            #expect(first.succeeded, "first dhclient run: \(first.output)")
            try await must(["ip", "-n", fixture.clientNamespace, "addr", "flush", "dev", fixture.clientInterface])

            // A new server instance (a restarted launcher) with nothing but the same lease value.
            let (second, log) = try await withServer(fixture, lease: lease) { try await DHCPClient.dhclient.acquire(on: fixture) }
            #expect(second.succeeded, "second dhclient run: \(second.output)")
            #expect(second.output.contains("DHCPREQUEST for 10.42.0.7"), "dhclient output: \(second.output)")
            #expect(log.contains { $0.contains("DHCPREQUEST -> DHCPACK") }, "server log: \(log)")
            #expect(!log.contains { $0.contains("DHCPDISCOVER") }, "INIT-REBOOT needs no DISCOVER; server log: \(log)")
            #expect(try await fixture.clientAddresses() == ["10.42.0.7/24"])
        }
    }

    @Test func changedLeaseNaksTheOldAddressAndTheClientRediscovers() async throws {
        try await withFixture { fixture in
            let lease = Conformance.podLease(for: fixture.clientMAC)
            let (first, _) = try await withServer(fixture, lease: lease) { try await DHCPClient.dhclient.acquire(on: fixture) }
            #expect(first.succeeded, "first dhclient run: \(first.output)")
            try await must(["ip", "-n", fixture.clientNamespace, "addr", "flush", "dev", fixture.clientInterface])

            var moved = lease
            moved.address = cidr("10.42.0.8/24")
            let (second, log) = try await withServer(fixture, lease: moved) { try await DHCPClient.dhclient.acquire(on: fixture) }
            #expect(second.succeeded, "second dhclient run: \(second.output)")
            #expect(second.output.contains("DHCPNAK"), "dhclient output: \(second.output)")
            #expect(log.contains { $0.hasPrefix("warning") && $0.contains("DHCPREQUEST -> DHCPNAK") }, "server log: \(log)")
            #expect(try await fixture.clientAddresses() == ["10.42.0.8/24"])
        }
    }

    /// udhcpc renews from its leased address by unicast to the server identifier, through its
    /// default route; the ACK goes back by unicast to `ciaddr`, through the kernel's UDP stack.
    @Test func unicastRenewalIsAcknowledged() async throws {
        try await withFixture { fixture in
            let lease = Conformance.podLease(for: fixture.clientMAC)
            try await Conformance.makeServerSideGateway(fixture, lease: lease)
            let (result, log) = try await withServer(fixture, lease: lease) {
                try await DHCPClient.udhcpc.acquire(on: fixture, .init(renewOnce: true))
            }
            let renewed = try? String(contentsOfFile: "\(fixture.tempDirectory)/resolv.conf.renewed", encoding: .utf8)
            #expect(renewed == "10.42.0.7\n", "udhcpc output: \(result.output)\nserver log: \(log)")
            // The renewal carries ciaddr; the first REQUEST (selecting) does not.
            #expect(log.contains { $0.contains("DHCPREQUEST from 10.42.0.7 -> DHCPACK 10.42.0.7 via unicast 10.42.0.7") }, "server log: \(log)")
        }
    }

    /// dhcpcd probes the offered address with ARP; another host answering makes it DECLINE,
    /// which the server must log as an error.
    @Test func addressConflictIsDeclinedAndLoggedLoudly() async throws {
        try await withFixture { fixture in
            let lease = Conformance.podLease(for: fixture.clientMAC)
            // The "other host": the server namespace itself owns the leased address.
            try await must(["ip", "-n", fixture.serverNamespace, "addr", "add", "10.42.0.7/24", "dev", fixture.serverInterface])
            let (result, log) = try await withServer(fixture, lease: lease) {
                try await DHCPClient.dhcpcd.acquire(on: fixture, .init(patient: false, arpProbe: true))
            }
            #expect(!result.succeeded, "dhcpcd used a conflicting address: \(result.output)")
            #expect(log.contains { $0.hasPrefix("error") && $0.contains("ADDRESS CONFLICT") }, "dhcpcd: \(result.output)\nserver log: \(log)")
            #expect(try await fixture.clientAddresses().isEmpty)
        }
    }

    /// USE_NET_BRIDGES layout: the server listens on a Linux bridge whose port leads to the client.
    @Test func servesThroughABridge() async throws {
        try await withFixture(bridged: true) { fixture in
            let lease = Conformance.podLease(for: fixture.clientMAC)
            let (result, log) = try await withServer(fixture, lease: lease) { try await DHCPClient.udhcpc.acquire(on: fixture) }
            #expect(result.succeeded, "udhcpc: \(result.output)\nserver log: \(log)")
            #expect(try await fixture.clientAddresses() == ["10.42.0.7/24"])
        }
    }

    // MARK: Life cycle

    @Test func runReturnsWhenStoppedAndWhenCancelled() async throws {
        try await withFixture { fixture in
            let lease = Conformance.podLease(for: fixture.clientMAC)
            let interface = fixture.serverInterface
            let logger = recordingLogger(OutputCollector())
            let stopped = try await inNetworkNamespace(fixture.serverNamespace) {
                try DHCPServer(interfaceName: interface, lease: lease, logger: logger)
            }
            let running = Task { try await stopped.run() }
            stopped.stop()
            try await running.value
            // A stopped server stays stopped: a second run() may not serve again.
            await #expect(throws: DHCPServerError.self) { try await stopped.run() }

            let cancelled = try await inNetworkNamespace(fixture.serverNamespace) {
                try DHCPServer(interfaceName: interface, lease: lease, logger: logger)
            }
            let task = Task { try await cancelled.run() }
            task.cancel()
            // Bounded: a run() that ignores cancellation fails the test (and is then stopped)
            // instead of hanging the suite.
            let returnedOnCancel = await withTaskGroup(of: Bool.self) { group in
                group.addTask { _ = await task.result; return true }
                group.addTask { try? await Task.sleep(for: .seconds(10)); return false }
                let first = await group.next() ?? false
                if !first { cancelled.stop() }
                group.cancelAll()
                return first
            }
            #expect(returnedOnCancel, "run() returns within 10 s once its task is cancelled")
            try await task.value
        }
    }

    /// Issue 15: the launcher stops every responder at once and restores the network once all their
    /// run() calls returned, so run() itself must leave nothing open on the link: its packet socket
    /// and port 67 are gone when it returns, while the server object is still alive (not at deinit).
    @Test func runClosesItsSocketsBeforeItReturns() async throws {
        try await withFixture { fixture in
            let interface = fixture.serverInterface
            let namespace = fixture.serverNamespace
            let logger = recordingLogger(OutputCollector())
            let (dhcp, ipv6) = try await inNetworkNamespace(namespace) {
                (try DHCPServer(interfaceName: interface, lease: Conformance.podLease(for: fixture.clientMAC), logger: logger),
                 try IPv6Server(interfaceName: interface, lease: IPv6Lease(clientMAC: fixture.clientMAC, addresses: [IPv6Interface("fd00:15::7/64")!]),
                                logger: logger))
            }
            let index = try #require(Int(try await runAsync(["ip", "netns", "exec", namespace, "cat", "/sys/class/net/\(interface)/ifindex"])
                .stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
            /// (packet sockets on the interface, UDP sockets on port 67) in the server's namespace.
            @Sendable func openSockets() async throws -> (packet: Int, port67: Int) {
                let packet = try await runAsync(["ip", "netns", "exec", namespace, "cat", "/proc/net/packet"]).stdout
                let udp = try await runAsync(["ip", "netns", "exec", namespace, "cat", "/proc/net/udp"]).stdout
                // /proc/net/packet: sk RefCnt Type Proto Iface …; /proc/net/udp: sl local_address …
                let onInterface = packet.split(separator: "\n").dropFirst().filter { $0.split(separator: " ").dropFirst(4).first == "\(index)" }
                let port67 = udp.split(separator: "\n").dropFirst().filter { $0.split(separator: " ").dropFirst(1).first?.hasSuffix(":0043") == true }
                return (onInterface.count, port67.count)
            }
            let servers = [Task { try await dhcp.run() }, Task { try await ipv6.run() }]
            let serving = try await openSockets()
            #expect(serving.packet == 2 && serving.port67 == 1, "serving: \(serving)")
            dhcp.stop()
            ipv6.stop()
            for server in servers { try await server.value }
            let stopped = try await openSockets()
            #expect(stopped.packet == 0 && stopped.port67 == 0, "run() returned with sockets still open: \(stopped)")
            withExtendedLifetime((dhcp, ipv6)) {}
        }
    }

    @Test func initRejectsMissingInterfaceAndInvalidLease() async throws {
        try await withFixture { fixture in
            let lease = Conformance.podLease(for: fixture.clientMAC)
            let logger = recordingLogger(OutputCollector())
            let missing = try await inNetworkNamespace(fixture.serverNamespace) { () -> String in
                do {
                    _ = try DHCPServer(interfaceName: "nosuch0", lease: lease, logger: logger)
                    return "no error"
                } catch {
                    return "\(error)"
                }
            }
            #expect(missing.contains("no interface named \"nosuch0\""))

            var tooSmall = lease
            tooSmall.mtu = 10
            let invalid = tooSmall
            let interface = fixture.serverInterface
            let invalidError = try await inNetworkNamespace(fixture.serverNamespace) { () -> String in
                do {
                    _ = try DHCPServer(interfaceName: interface, lease: invalid, logger: logger)
                    return "no error"
                } catch {
                    return "\(error)"
                }
            }
            #expect(invalidError.contains("MTU 10"))
            #expect(!invalidError.contains("\n"))
        }
    }
}
