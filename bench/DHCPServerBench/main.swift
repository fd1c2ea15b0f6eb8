// DHCPServerBench: the server's per-packet work (decode, decide, encode, frame), timed.
// Not part of `swift test`: `swift run -c release DHCPServerBench [--packets N] [--runs N]`.
import DHCPServer
import NetworkTypes

/// Reads `--name VALUE` from the command line.
func option(_ name: String, default value: Int) -> Int {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count,
          let parsed = Int(arguments[index + 1]), parsed > 0 else { return value }
    return parsed
}

let packets = option("--packets", default: 200_000)
let runs = option("--runs", default: 5)

let clientMAC = MACAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
let serverMAC = MACAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01])
let lease = DHCPLease(
    clientMAC: clientMAC,
    address: IPv4Interface("10.42.0.7/24")!,
    serverIdentifier: IPv4Address("169.254.0.1")!,
    router: IPv4Address("10.42.0.1")!,
    staticRoutes: [DHCPStaticRoute(destination: IPv4Interface("192.168.50.0/24")!, gateway: IPv4Address("10.42.0.254")!)],
    dnsServers: [IPv4Address("10.43.0.10")!],
    domainName: "example.internal",
    searchDomains: ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"],
    hostname: "vm-0",
    mtu: 1450)
let logic = DHCPResponderLogic(lease: lease)

func request(_ type: DHCPMessageType, from mac: MACAddress = clientMAC, configure: (inout DHCPMessage) -> Void = { _ in }) -> [UInt8] {
    var message = DHCPMessage(op: .request, xid: 0xC0FFEE, clientMAC: mac)
    message.messageType = type
    message.options[.parameterRequestList] = [1, 3, 6, 12, 15, 26, 28, 119, 121]
    message.options[.clientIdentifier] = [1] + mac.octets
    configure(&message)
    return message.encoded()
}

let cases: [(String, [UInt8])] = [
    ("DISCOVER -> OFFER", request(.discover)),
    ("REQUEST (selecting) -> ACK", request(.request) {
        $0.options[.requestedIPAddress] = lease.address.address.octets
        $0.options[.serverIdentifier] = lease.serverIdentifier.octets
    }),
    ("REQUEST (renewing) -> ACK", request(.request) { $0.ciaddr = lease.address.address }),
    ("other MAC -> ignored", request(.discover, from: MACAddress([0x52, 0x54, 0x00, 0xAB, 0xCD, 0xEF]))),
    ("malformed -> undecodable", Array(request(.discover).prefix(200))),
]

print("DHCPServerBench: \(packets) packets per run, \(runs) runs; nanoseconds per packet (median, min, max)")
let clock = ContinuousClock()
for (name, packet) in cases {
    var perPacket: [Double] = []
    var sink = 0
    for _ in 0..<runs {
        let elapsed = clock.measure {
            for _ in 0..<packets {
                switch logic.process(packet: packet, serverMAC: serverMAC) {
                case .reply(_, _, .frame(let frame)): sink &+= frame.count
                case .reply(_, _, .datagram(let payload, _, _)): sink &+= payload.count
                case .ignored: sink &+= 1
                case .undecodable: sink &+= 2
                }
            }
        }
        let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        perPacket.append(nanoseconds / Double(packets))
    }
    perPacket.sort()
    let line = [perPacket[perPacket.count / 2], perPacket.first!, perPacket.last!].map { String(Int($0.rounded())) }
    print("\(name.padding(toLength: 28, withPad: " ", startingAt: 0)) \(line.joined(separator: "  "))  (checksum \(sink))")
}
