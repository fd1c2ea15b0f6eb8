// DHCPBench: the embedded DHCP server's own work per packet, without the network.
//
//   swift run -c release DHCPBench [--iterations N] [--runs N] [--json]
//
// Times DHCPResponderLogic.process(packet:serverMAC:) — decode, decide, encode and frame, exactly
// what DHCPServer does for every datagram — for a DISCOVER and a SELECTING REQUEST as busybox
// udhcpc sends them, plus decoding alone. The baseline, measured in the same process and run, is
// what the kernel costs for one datagram anyway: a send and a receive of the same DISCOVER over
// a UDP socket on 127.0.0.1. Each figure is nanoseconds per packet: the median, min and max over
// the runs, each run averaging N iterations. One more figure is the DNS relay's per-interface setup:
// a DNSRelay opening its sockets (UDP and TCP listeners bound to a device, a wake-up pipe) and
// closing them again, on 127.0.0.1 of `lo` with an ephemeral port (N/10 per run).
import DHCPServer
import DNSRelay
import Foundation
import Logging
import NetworkTypes

#if canImport(Glibc)
import Glibc
#endif

struct BenchError: Error, CustomStringConvertible {
    var description: String
}

struct Options {
    var iterations = 20_000
    var runs = 7
    var json = false

    init(_ arguments: [String]) throws(BenchError) {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            if argument == "--json" {
                json = true
                continue
            }
            guard let value = iterator.next().flatMap({ Int($0) }), value > 0 else {
                throw BenchError(description: "usage: DHCPBench [--iterations N] [--runs N] [--json]")
            }
            switch argument {
            case "--iterations": iterations = value
            case "--runs": runs = value
            default: throw BenchError(description: "unknown option \(argument); see DHCPBench --help in bench/README.md")
            }
        }
    }
}

/// Median, min and max of per-packet times in nanoseconds.
struct Figure {
    var name: String
    var samples: [Double]

    var median: Double {
        let sorted = samples.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    var json: String {
        String(format: "\"%@\": {\"unit\": \"ns\", \"median\": %.1f, \"min\": %.1f, \"max\": %.1f, \"runs\": %d}",
               name, median, samples.min()!, samples.max()!, samples.count)
    }

    var text: String {
        name.padding(toLength: 36, withPad: " ", startingAt: 0)
            + String(format: "median %8.0f ns   min %8.0f   max %8.0f", median, samples.min()!, samples.max()!)
    }
}

/// Runs `body` `iterations` times per run and returns nanoseconds per call for each run.
/// `body` returns a number folded into `sink` so the optimiser cannot drop the work.
func measure(_ name: String, options: Options, sink: inout Int, _ body: () throws -> Int) rethrows -> Figure {
    for _ in 0..<max(1, options.iterations / 10) { sink &+= try body() }  // warm-up
    var samples: [Double] = []
    let clock = ContinuousClock()
    for _ in 0..<options.runs {
        let start = clock.now
        for _ in 0..<options.iterations { sink &+= try body() }
        let elapsed = clock.now - start
        let (seconds, attoseconds) = elapsed.components
        samples.append((Double(seconds) * 1e9 + Double(attoseconds) / 1e9) / Double(options.iterations))
    }
    return Figure(name: name, samples: samples)
}

/// The lease the launcher would plan for a typical container interface.
let lease = DHCPLease(
    clientMAC: MACAddress([0x02, 0x42, 0x0A, 0x58, 0x00, 0x02]),
    address: IPv4Interface(address: IPv4Address(10, 88, 0, 2), prefixLength: 24),
    serverIdentifier: IPv4Address(169, 254, 17, 42),
    router: IPv4Address(10, 88, 0, 1),
    dnsServers: [IPv4Address(10, 88, 0, 1), IPv4Address(10, 96, 0, 10)],
    domainName: "default.svc.cluster.local",
    searchDomains: ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"],
    hostname: "vm-0",
    mtu: 1500)

/// A client message shaped like busybox udhcpc's (client identifier, maximum size, vendor class,
/// parameter request list).
func clientMessage(_ type: DHCPMessageType, extra: [DHCPOption] = []) -> [UInt8] {
    var options: DHCPOptions = [
        DHCPOption(.messageType, [type.rawValue]),
        DHCPOption(.clientIdentifier, [1] + lease.clientMAC.octets),
        DHCPOption(.maximumMessageSize, DHCPOptionValue.uint16(576)),
        DHCPOption(DHCPOptionCode(60), Array("udhcp 1.35.0".utf8)),
        DHCPOption(.parameterRequestList, [1, 3, 6, 12, 15, 28, 42, 26, 119, 121]),
    ]
    for option in extra { options.append(option.code, option.data) }
    return DHCPMessage(op: .request, xid: 0x5EED_1234, clientMAC: lease.clientMAC, options: options).encoded()
}

/// One send and one receive of `payload` through a UDP socket talking to itself on 127.0.0.1.
final class LoopbackDatagram {
    let fd: Int32
    var address = sockaddr_in()
    var buffer = [UInt8](repeating: 0, count: 2048)

    init() throws(BenchError) {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError(description: "socket: \(String(cString: strerror(errno)))") }
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw BenchError(description: "bind 127.0.0.1: \(String(cString: strerror(errno)))") }
    }

    deinit { close(fd) }

    func roundTrip(_ payload: [UInt8]) -> Int {
        let sent = payload.withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        precondition(sent == payload.count && received == payload.count, "loopback datagram lost")
        return received
    }
}

func main() throws {
    let options = try Options(Array(CommandLine.arguments.dropFirst()))
    let logic = DHCPResponderLogic(lease: lease)
    let serverMAC = MACAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01])
    let discover = clientMessage(.discover)
    let request = clientMessage(.request, extra: [
        DHCPOption(.requestedIPAddress, lease.address.address.octets),
        DHCPOption(.serverIdentifier, lease.serverIdentifier.octets),
    ])

    // The answers must be the ones a client accepts, or the timing means nothing.
    func frameLength(_ packet: [UInt8], expecting type: DHCPMessageType) -> Int {
        guard case .reply(_, let reply, .frame(let frame)) = logic.process(packet: packet, serverMAC: serverMAC),
              reply.message.messageType == type, reply.message.yiaddr == lease.address.address else {
            fatalError("DHCPBench: the server did not answer with \(type); the benchmark is broken")
        }
        return frame.count
    }
    _ = frameLength(discover, expecting: .offer)
    _ = frameLength(request, expecting: .ack)

    var sink = 0
    let loopback = try LoopbackDatagram()
    let figures = [
        measure("process DISCOVER -> OFFER frame", options: options, sink: &sink) { frameLength(discover, expecting: .offer) },
        measure("process REQUEST -> ACK frame", options: options, sink: &sink) { frameLength(request, expecting: .ack) },
        measure("decode DISCOVER only", options: options, sink: &sink) {
            (try? DHCPMessage(decoding: discover))?.options.entries.count ?? 0
        },
        measure("baseline: UDP send+recv on loopback", options: options, sink: &sink) { loopback.roundTrip(discover) },
    ]
    let relayConfiguration = DNSRelayConfiguration(listenAddress: IPv4Address(127, 0, 0, 1), port: 0,
                                                   upstreams: [IPv4Address(127, 0, 0, 11)], clients: [lease.address.address])
    let relayLogger = Logger(label: "bench")
    var relayOptions = options
    relayOptions.iterations = max(1, options.iterations / 10)
    let relaySetup = try measure("DNS relay open+close, one interface", options: relayOptions, sink: &sink) {
        do {
            return Int(try DNSRelay(interfaceName: "lo", configuration: relayConfiguration, logger: relayLogger).configuration.port)
        } catch {
            throw BenchError(description: "DNS relay setup: \(error)")
        }
    }
    let ratio = figures[0].median / figures[3].median
    if options.json {
        print("{" + (figures + [relaySetup]).map(\.json).joined(separator: ", ")
              + String(format: ", \"ratio_process_discover_to_loopback\": %.3f, \"iterations\": %d, \"sink\": %d}",
                       ratio, options.iterations, sink & 0xFFFF))
    } else {
        print("DHCPBench: \(options.runs) runs of \(options.iterations) packets each, ns per packet")
        for figure in figures + [relaySetup] { print(figure.text) }
        print(String(format: "ratio process DISCOVER / loopback datagram (medians)  %.2fx", ratio))
    }
}

do {
    try main()
} catch {
    FileHandle.standardError.write(Data("DHCPBench: \(error)\n".utf8))
    exit(1)
}
