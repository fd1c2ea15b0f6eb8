// IPv6Bench: what the IPv6 responder (Router Advertisements + DHCPv6) adds per interface.
//
//   swift run -c release IPv6Bench [INTERFACE] [--runs N]     (as root; INTERFACE defaults to lo)
//
// Setup per interface: IPv6Lease.validate + IPv6ResponderLogic.init + IPv6Server.init (AF_PACKET
// socket, two multicast memberships, PACKET_AUXDATA, wake-up pipe) + starting its task — what the
// launcher adds per attached interface before QEMU starts — averaged over 64 servers per run;
// teardown (stop, join, close) timed apart. Per frame: IPv6ResponderLogic.process(frame:serverMAC:) for a SOLICIT and a
// Router Solicitation. Figures: median (min–max) over the runs.
import Foundation
import IPv6Server
import Logging
import NetworkTypes

let arguments = Array(CommandLine.arguments.dropFirst())
var interface = "lo"
var runs = 7
var index = 0
while index < arguments.count {
    if arguments[index] == "--runs", index + 1 < arguments.count, let value = Int(arguments[index + 1]), value > 0 {
        runs = value
        index += 2
    } else {
        interface = arguments[index]
        index += 1
    }
}

let vm = MACAddress("52:54:00:12:34:56")!
let lease = IPv6Lease(clientMAC: vm, addresses: [IPv6Interface("fd00:1::5/64")!], dnsServers: [IPv6Address("fd00:53::53")!],
                      searchDomains: ["example.internal"], router: IPv6Address("fe80::ecee:eeff:feee:eeee")!, mtu: 1500)
var logger = Logger(label: "ipv6-bench")
logger.logLevel = .error

func median(_ values: [Double]) -> (Double, Double, Double) {
    let sorted = values.sorted()
    return (sorted[sorted.count / 2], sorted.first!, sorted.last!)
}

func format(_ figure: (Double, Double, Double), unit: String) -> String {
    String(format: "%.1f %@ (%.1f–%.1f)", figure.0, unit, figure.1, figure.2)
}

// Setup: 64 servers per run created and started (the launcher's per-interface work before QEMU
// starts), then stopped and closed (teardown, timed apart: closing a packet socket waits for an RCU
// grace period in the kernel).
var setupMicroseconds: [Double] = []
var teardownMicroseconds: [Double] = []
func microseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1_000_000 + Double(duration.components.attoseconds) / 1_000_000_000_000
}
for _ in 0..<runs {
    let count = 64
    var servers: [IPv6Server] = []
    var tasks: [Task<Void, any Error>] = []
    let start = ContinuousClock.now
    do {
        for _ in 0..<count {
            try lease.validate()
            let server = try IPv6Server(interfaceName: interface, lease: lease, logger: logger)
            servers.append(server)
            tasks.append(Task { try await server.run() })
        }
    } catch {
        FileHandle.standardError.write(Data("IPv6Bench: \(error)\n".utf8))
        exit(1)
    }
    let started = ContinuousClock.now
    for server in servers { server.stop() }
    for task in tasks { try await task.value }
    servers.removeAll()
    let closed = ContinuousClock.now
    setupMicroseconds.append(microseconds(started - start) / Double(count))
    teardownMicroseconds.append(microseconds(closed - started) / Double(count))
}

// Per frame.
let logic = IPv6ResponderLogic(lease: lease)
let server = MACAddress("02:00:00:00:00:01")!
let solicit = DHCPv6Message(type: .solicit, transactionID: 0x123456, options: [
    DHCPv6Option(DHCPv6OptionCode.clientID, [0, 1, 0, 1, 1, 2, 3, 4] + vm.octets),
    DHCPv6Option(DHCPv6OptionCode.elapsedTime, [0, 0]),
    DHCPv6Option(DHCPv6OptionCode.iaNA, IdentityAssociation(iaid: 1, t1: 0, t2: 0, options: []).encoded),
    DHCPv6Option(DHCPv6OptionCode.optionRequest, [0, 23, 0, 24]),
])
let solicitFrame = IPv6Frame.build(sourceMAC: vm, destinationMAC: IPv6Address.allDHCPServersAndRelays.multicastMAC,
                                   source: .linkLocal(eui64: vm), destination: .allDHCPServersAndRelays, nextHeader: 17, hopLimit: 1,
                                   upperLayer: IPv6Frame.udp(sourcePort: 546, destinationPort: 547, payload: solicit.encoded()))
let rsFrame = IPv6Frame.build(sourceMAC: vm, destinationMAC: IPv6Address.allRouters.multicastMAC, source: .linkLocal(eui64: vm),
                              destination: .allRouters, nextHeader: 58, hopLimit: 255, upperLayer: [133, 0, 0, 0, 0, 0, 0, 0, 1, 1] + vm.octets)
func perFrame(_ frame: [UInt8], runs: Int) -> [Double] {
    (0..<runs).map { _ in
        let iterations = 20_000
        var replies = 0
        let start = ContinuousClock.now
        for _ in 0..<iterations {
            if case .reply = logic.process(frame: frame, serverMAC: server) { replies += 1 }
        }
        let elapsed = ContinuousClock.now - start
        precondition(replies == iterations, "the bench frame got no reply")
        return Double(elapsed.components.attoseconds / 1_000_000_000 + elapsed.components.seconds * 1_000_000_000) / Double(iterations)
    }
}
print("IPv6 responder setup per interface (validate, logic, socket, memberships, thread start) on \(interface): \(format(median(setupMicroseconds), unit: "µs"))")
print("IPv6 responder teardown per interface (stop, join, close): \(format(median(teardownMicroseconds), unit: "µs"))")
print("SOLICIT -> ADVERTISE, whole per-frame path: \(format(median(perFrame(solicitFrame, runs: runs)), unit: "ns"))")
print("ROUTER-SOLICITATION -> ADVERTISEMENT, whole per-frame path: \(format(median(perFrame(rsFrame, runs: runs)), unit: "ns"))")
