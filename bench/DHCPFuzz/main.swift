// DHCPFuzz: a long property run of the DHCPv4 codec and server path, outside `swift test`'s budget.
//
//   swift run -c release DHCPFuzz [--inputs N] [--seed S]      (make fuzz)
//
// Feeds N inputs (default 1,000,000) through exactly what the server does with a received frame:
// DHCPResponderLogic.process(frame:serverMAC:) — frame check, decode, decide, encode, frame — and,
// for a third of them, process(packet:) on the bare payload. The inputs are deterministic from the
// seed: mutated valid requests (bit flips, byte sets, inserts, deletes, cuts, option areas replaced),
// requests built from random field values and options, and random bytes. Properties checked on every
// reply: it is a BOOTREPLY with the request's xid; the frame parses with valid IPv4 and UDP checksums
// and carries the encoded reply; the reply decodes back to the same message. Any violation prints the
// input in hex and exits 1; a crash is a crash. Prints inputs, outcomes and time.
import DHCPServer
import Foundation
import NetworkTypes

/// SplitMix64: small, fast, reproducible from a seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

var inputs = 1_000_000
var seed: UInt64 = 1
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch (argument, arguments.next()) {
    case ("--inputs", let value?) where Int(value).map({ $0 > 0 }) == true: inputs = Int(value)!
    case ("--seed", let value?) where UInt64(value) != nil: seed = UInt64(value)!
    default:
        FileHandle.standardError.write(Data("usage: DHCPFuzz [--inputs N] [--seed S]\n".utf8))
        exit(2)
    }
}

let clientMAC = MACAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
let serverMAC = MACAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01])
let serverID = IPv4Address(169, 254, 7, 9)
let ours = IPv4Interface(address: IPv4Address(10, 42, 0, 7), prefixLength: 24)
let lease = DHCPLease(
    clientMAC: clientMAC, address: ours, serverIdentifier: serverID, router: IPv4Address(10, 42, 0, 1),
    staticRoutes: [DHCPStaticRoute(destination: IPv4Interface(address: IPv4Address(169, 254, 7, 9), prefixLength: 32), gateway: IPv4Address(0))],
    dnsServers: [serverID, IPv4Address(10, 43, 0, 10)], domainName: "example.internal",
    searchDomains: ["default.svc.cluster.local", "svc.cluster.local"], hostname: "vm-0", mtu: 1450, leaseSeconds: 3600)
let logic = DHCPResponderLogic(lease: lease)

func request(_ type: DHCPMessageType, ciaddr: IPv4Address = IPv4Address(0), giaddr: IPv4Address = IPv4Address(0),
             requested: IPv4Address? = nil, server: IPv4Address? = nil, flags: UInt16 = 0) -> DHCPMessage {
    var message = DHCPMessage(op: .request, xid: 0x1234_5678, clientMAC: clientMAC)
    message.ciaddr = ciaddr
    message.giaddr = giaddr
    message.flags = flags
    message.messageType = type
    if let requested { message.options[.requestedIPAddress] = requested.octets }
    if let server { message.options[.serverIdentifier] = server.octets }
    message.options.append(.parameterRequestList, [1, 3, 6, 12, 15, 26, 28, 51, 54, 119, 121])
    message.options.append(.clientIdentifier, [1] + clientMAC.octets)
    return message
}

let seeds: [[UInt8]] = [
    request(.discover), request(.discover, flags: 0x8000),
    request(.request, requested: ours.address, server: serverID),
    request(.request, requested: IPv4Address(1, 2, 3, 4)),
    request(.request, ciaddr: ours.address), request(.request, ciaddr: IPv4Address(10, 42, 0, 9)),
    request(.inform, ciaddr: ours.address), request(.decline, requested: ours.address, server: serverID),
    request(.release, ciaddr: ours.address), request(.discover, giaddr: IPv4Address(10, 0, 0, 1)),
].map { $0.encoded() }

var generator = SplitMix64(state: seed)

func randomBytes(_ count: Int, _ generator: inout SplitMix64) -> [UInt8] {
    (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

/// One input: a mutated seed, a random-field request, or random bytes.
func nextPayload(_ generator: inout SplitMix64) -> [UInt8] {
    switch UInt8.random(in: 0..<10, using: &generator) {
    case 0..<6:
        var packet = seeds.randomElement(using: &generator)!
        for _ in 0..<Int.random(in: 1...8, using: &generator) {
            let position = packet.isEmpty ? 0 : Int.random(in: 0..<packet.count, using: &generator)
            switch UInt8.random(in: 0..<7, using: &generator) {
            case 0 where !packet.isEmpty: packet[position] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &generator)
            case 1 where !packet.isEmpty: packet[position] = UInt8.random(in: 0...255, using: &generator)
            case 2: packet.insert(contentsOf: randomBytes(Int.random(in: 1...4, using: &generator), &generator), at: position)
            case 3 where !packet.isEmpty: packet.removeSubrange(position..<min(packet.count, position + Int.random(in: 1...4, using: &generator)))
            case 4: packet = Array(packet.prefix(position))
            case 5 where packet.count > 240:
                // Replace the option area after the magic cookie with random TLVs.
                var options: [UInt8] = []
                for _ in 0..<Int.random(in: 0...12, using: &generator) {
                    let length = Int.random(in: 0...20, using: &generator)
                    options += [UInt8.random(in: 0...255, using: &generator), UInt8(length)] + randomBytes(length, &generator)
                }
                packet = Array(packet.prefix(240)) + options + (Bool.random(using: &generator) ? [255] : [])
            default: packet.append(UInt8.random(in: 0...255, using: &generator))
            }
        }
        return packet
    case 6..<8:
        var message = DHCPMessage(op: .request, xid: UInt32.random(in: 0...UInt32.max, using: &generator),
                                  clientMAC: Bool.random(using: &generator) ? clientMAC : MACAddress(randomBytes(6, &generator)))
        message.htype = Bool.random(using: &generator) ? 1 : UInt8.random(in: 0...255, using: &generator)
        message.flags = UInt16.random(in: 0...UInt16.max, using: &generator)
        message.ciaddr = Bool.random(using: &generator) ? ours.address : IPv4Address(UInt32.random(in: 0...UInt32.max, using: &generator))
        message.giaddr = Bool.random(using: &generator) ? IPv4Address(0) : IPv4Address(UInt32.random(in: 0...UInt32.max, using: &generator))
        message.options.append(.messageType, [UInt8.random(in: 0...10, using: &generator)])
        for _ in 0..<Int.random(in: 0...6, using: &generator) {
            message.options.append(DHCPOptionCode(rawValue: UInt8.random(in: 1...254, using: &generator)),
                                   randomBytes(Int.random(in: 0...300, using: &generator), &generator))
        }
        return message.encoded()
    default:
        return randomBytes(Int.random(in: 0...700, using: &generator), &generator)
    }
}

func fail(_ what: String, _ input: [UInt8]) -> Never {
    print("PROPERTY VIOLATED: \(what)\ninput (\(input.count) bytes): \(input.map { String(format: "%02x", $0) }.joined())")
    exit(1)
}

func check(_ outcome: DHCPPacketOutcome, input: [UInt8], counts: inout [String: Int]) {
    switch outcome {
    case .undecodable:
        counts["undecodable", default: 0] += 1
    case .ignored(let message, _):
        counts["ignored", default: 0] += 1
        _ = message.encoded()
    case .reply(let request, let reply, .frame(let frame)):
        counts["answered", default: 0] += 1
        guard reply.message.op == .reply, reply.message.xid == request.xid else { fail("reply op/xid", input) }
        guard let parsed = UDPFrame.parse(frame), parsed.ipChecksumValid, parsed.udpChecksumValid,
              parsed.payload == reply.message.encoded() else { fail("reply frame", input) }
        guard let decoded = try? DHCPMessage(decoding: parsed.payload), decoded == reply.message else {
            fail("reply does not decode to itself", input)
        }
    }
}

var counts: [String: Int] = [:]
let start = ContinuousClock.now
for index in 0..<inputs {
    let payload = nextPayload(&generator)
    let source = UInt8.random(in: 0..<8, using: &generator) == 0 ? MACAddress(randomBytes(6, &generator)) : clientMAC
    let frame = UDPFrame.build(sourceMAC: source, destinationMAC: serverMAC, sourceIP: IPv4Address(0),
                               destinationIP: IPv4Address(0xFFFF_FFFF), sourcePort: 68, destinationPort: 67, payload: payload)
    switch logic.process(frame: frame, serverMAC: serverMAC) {
    case .rejected:
        counts["rejected frame", default: 0] += 1
    case .packet(let outcome):
        check(outcome, input: payload, counts: &counts)
    }
    if index % 3 == 0 { check(logic.process(packet: payload, serverMAC: serverMAC), input: payload, counts: &counts) }
}
let elapsed = ContinuousClock.now - start
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print("DHCPFuzz: \(inputs) inputs (seed \(seed)), no crash, no property violated, \(String(format: "%.1f", seconds)) s")
for (outcome, count) in counts.sorted(by: { $0.key < $1.key }) { print("  \(outcome): \(count)") }
