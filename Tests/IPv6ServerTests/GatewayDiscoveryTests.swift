import IPv6Server
import NetworkTypes
import Synchronization
import Testing

/// A gateway on an in-memory link that answers as Linux does: a Neighbor Advertisement (solicited,
/// from the target address, with its link-layer address) for a solicitation of an address it owns,
/// an echo reply from its link-local address for an echo request to ff02::1 in a frame to its MAC
/// (unless it ignores multicast echo). Answers are queued and read back by `receive`; a `receive`
/// with nothing queued returns nil at once, so no test waits.
final class SimulatedGatewayLink: LinkFrameChannel, Sendable {
    let interfaceMAC: MACAddress
    let gatewayMAC: MACAddress
    let addresses: [IPv6Address]
    let answersMulticastEcho: Bool
    let includesTargetLinkLayer: Bool
    private let state = Mutex<(sent: [[UInt8]], queue: [[UInt8]])>(([], []))

    init(interfaceMAC: MACAddress = mac("02:aa:00:00:00:02"), gatewayMAC: MACAddress = mac("02:42:ac:11:00:01"),
         addresses: [IPv6Address], answersMulticastEcho: Bool = true, includesTargetLinkLayer: Bool = true, noise: [[UInt8]] = []) {
        self.interfaceMAC = interfaceMAC
        self.gatewayMAC = gatewayMAC
        self.addresses = addresses
        self.answersMulticastEcho = answersMulticastEcho
        self.includesTargetLinkLayer = includesTargetLinkLayer
        state.withLock { $0.queue = noise }
    }

    var sent: [[UInt8]] { state.withLock { $0.sent } }

    func send(frame: [UInt8]) throws(IPv6ServerError) {
        state.withLock { $0.sent.append(frame) }
        guard let packet = IPv6Frame.parse(frame), packet.checksumValid, packet.nextHeader == IPv6Frame.nextHeaderICMPv6 else { return }
        let message = packet.upperLayer
        if message[0] == ICMPv6Type.neighborSolicitation, packet.hopLimit == 255, message.count >= 24 {
            let target = IPv6Address(Array(message[8..<24]))
            guard addresses.contains(target), packet.destinationMAC == target.solicitedNodeMulticast.multicastMAC || packet.destinationMAC == gatewayMAC
            else { return }
            var answer: [UInt8] = [ICMPv6Type.neighborAdvertisement, 0, 0, 0, 0xE0, 0, 0, 0] + target.octets
            if includesTargetLinkLayer { answer += [2, 1] + gatewayMAC.octets }
            queue(IPv6Frame.build(sourceMAC: gatewayMAC, destinationMAC: packet.sourceMAC, source: target, destination: packet.source,
                                  nextHeader: IPv6Frame.nextHeaderICMPv6, hopLimit: 255, upperLayer: answer))
        } else if message[0] == ICMPv6Type.echoRequest, packet.destination == .allNodes, packet.destinationMAC == gatewayMAC, answersMulticastEcho,
                  let linkLocal = addresses.first(where: \.isLinkLocal) {
            var reply = message
            reply[0] = ICMPv6Type.echoReply
            reply[2] = 0
            reply[3] = 0
            queue(IPv6Frame.build(sourceMAC: gatewayMAC, destinationMAC: packet.sourceMAC, source: linkLocal, destination: packet.source,
                                  nextHeader: IPv6Frame.nextHeaderICMPv6, hopLimit: 64, upperLayer: reply))
        }
    }

    func queue(_ frame: [UInt8]) { state.withLock { $0.queue.append(frame) } }

    func receive(timeoutMilliseconds: Int32) throws(IPv6ServerError) -> (frame: [UInt8], checksumUnverifiable: Bool)? {
        state.withLock { $0.queue.isEmpty ? nil : ($0.queue.removeFirst(), false) }
    }
}

@Suite struct GatewayDiscoveryTests {
    static let global = v6("fd00:d0c::1")
    static let localMAC = mac("02:aa:00:00:00:02")
    static let local = IPv6Address.linkLocal(eui64: localMAC)
    static let gatewayMAC = mac("02:42:ac:11:00:01")
    static let eui64 = IPv6Address.linkLocal(eui64: gatewayMAC)
    static let stablePrivacy = v6("fe80::9c1d:4f2a:77e0:1b35")
    static let fast = GatewayDiscoverySchedule(rounds: 3, roundMilliseconds: 700)

    static func discovery() -> GatewayLinkLocalDiscovery {
        GatewayLinkLocalDiscovery(gateway: global, localMAC: localMAC, localLinkLocal: local, identifier: 0x4B4C)
    }

    @Test func dockersBridgeGatewayAnswersTheEchoFromItsLinkLocalAddress() throws {
        let link = SimulatedGatewayLink(addresses: [Self.global, Self.eui64])
        let found = try GatewayDiscoveryRun.discover(Self.discovery(), over: link, schedule: Self.fast)
        #expect(found == GatewayLinkLocal(address: Self.eui64, mac: Self.gatewayMAC, method: .echo))
        #expect(link.sent.count == 3, "one solicitation for the global address, then one echo and one solicitation")
    }

    @Test func aStablePrivacyLinkLocalAddressIsFoundByTheEcho() throws {
        let link = SimulatedGatewayLink(addresses: [Self.global, Self.stablePrivacy])
        let found = try GatewayDiscoveryRun.discover(Self.discovery(), over: link, schedule: Self.fast)
        #expect(found.address == Self.stablePrivacy && found.method == .echo)
    }

    @Test func aGatewayThatIgnoresMulticastEchoIsFoundByItsEUI64Address() throws {
        let link = SimulatedGatewayLink(addresses: [Self.global, Self.eui64], answersMulticastEcho: false, includesTargetLinkLayer: false)
        let found = try GatewayDiscoveryRun.discover(Self.discovery(), over: link, schedule: Self.fast)
        #expect(found == GatewayLinkLocal(address: Self.eui64, mac: Self.gatewayMAC, method: .eui64),
                "without a target link-layer option the advertisement's Ethernet source is the MAC")
    }

    @Test func aSilentGatewayIsReportedAfterTheScheduledSolicitations() throws {
        let link = SimulatedGatewayLink(addresses: [v6("fd00:d0c::99")])
        #expect(throws: GatewayDiscoveryError.gatewaySilent(gateway: Self.global, seconds: 2.1)) {
            try GatewayDiscoveryRun.discover(Self.discovery(), over: link, schedule: Self.fast)
        }
        #expect(link.sent.count == 3, "one solicitation per round, three rounds")
        let solicitation = try #require(IPv6Frame.parse(link.sent[0]))
        #expect(solicitation.destination == v6("ff02::1:ff00:1") && solicitation.destinationMAC == mac("33:33:ff:00:00:01"))
        #expect(solicitation.hopLimit == 255 && solicitation.source == Self.local && solicitation.sourceMAC == Self.localMAC)
        #expect(solicitation.checksumValid)
        #expect(Array(solicitation.upperLayer[8..<24]) == Self.global.octets)
        #expect(Array(solicitation.upperLayer[24...]) == [1, 1] + Self.localMAC.octets, "our link-layer address, so the gateway can answer at once")
        #expect(GatewayDiscoveryError.gatewaySilent(gateway: Self.global, seconds: 2.1).description
                == "the IPv6 gateway fd00:d0c::1 did not answer a Neighbor Solicitation within 2.1 s")
    }

    @Test func aGatewayWithoutAKnowableLinkLocalAddressIsReportedWithItsMAC() throws {
        let link = SimulatedGatewayLink(addresses: [Self.global, Self.stablePrivacy], answersMulticastEcho: false)
        #expect(throws: GatewayDiscoveryError.noLinkLocalAnswer(gateway: Self.global, mac: Self.gatewayMAC, seconds: 2.1)) {
            try GatewayDiscoveryRun.discover(Self.discovery(), over: link, schedule: Self.fast)
        }
        #expect(link.sent.count == 1 + 3 * 2, "stage two's rounds start afresh")
        let echo = try #require(IPv6Frame.parse(link.sent[1]))
        #expect(echo.destinationMAC == Self.gatewayMAC && echo.destination == .allNodes, "only the gateway receives the echo request")
        #expect(echo.upperLayer[0] == ICMPv6Type.echoRequest && echo.checksumValid)
        let candidate = try #require(IPv6Frame.parse(link.sent[2]))
        #expect(Array(candidate.upperLayer[8..<24]) == Self.eui64.octets)
    }

    @Test func answersThatDoNotProveAnythingAreIgnored() throws {
        var discovery = Self.discovery()
        func take(_ frame: [UInt8]) -> Bool { discovery.receive(frame) }
        func advertisement(target: IPv6Address, from source: MACAddress = Self.gatewayMAC, hopLimit: UInt8 = 255, flags: UInt8 = 0x60,
                           option: MACAddress? = nil, to destination: MACAddress = Self.localMAC) -> [UInt8] {
            var body: [UInt8] = [ICMPv6Type.neighborAdvertisement, 0, 0, 0, flags, 0, 0, 0] + target.octets
            if let option { body += [2, 1] + option.octets }
            return IPv6Frame.build(sourceMAC: source, destinationMAC: destination, source: target, destination: Self.local,
                                   nextHeader: IPv6Frame.nextHeaderICMPv6, hopLimit: hopLimit, upperLayer: body)
        }
        #expect(!take(advertisement(target: Self.global, hopLimit: 64)), "routed: not from the link")
        #expect(!take(advertisement(target: Self.global, flags: 0x20)), "unsolicited")
        #expect(!take(advertisement(target: v6("fd00:d0c::2"))), "for another address")
        #expect(!take(advertisement(target: Self.global, to: mac("02:bb:00:00:00:09"))), "for another host")
        var corrupted = advertisement(target: Self.global)
        corrupted[corrupted.count - 1] ^= 0xFF
        #expect(!take(corrupted), "bad checksum")
        #expect(!take(advertisement(target: Self.global, option: mac("33:33:00:00:00:01"))), "a multicast link-layer address")
        #expect(!take(Array(advertisement(target: Self.global).prefix(40))), "cut short")
        #expect(discovery.stage == .resolvingGatewayMAC)
        #expect(take(advertisement(target: Self.global, from: mac("02:00:00:00:00:77"), option: Self.gatewayMAC)))
        #expect(discovery.stage == .askingForLinkLocal(gatewayMAC: Self.gatewayMAC), "the option wins over the Ethernet source")

        func echoReply(from source: MACAddress = Self.gatewayMAC, address: IPv6Address = Self.stablePrivacy, identifier: UInt16 = 0x4B4C) -> [UInt8] {
            let body: [UInt8] = [ICMPv6Type.echoReply, 0, 0, 0, UInt8(identifier >> 8), UInt8(identifier & 0xFF), 0, 1]
            return IPv6Frame.build(sourceMAC: source, destinationMAC: Self.localMAC, source: address, destination: Self.local,
                                   nextHeader: IPv6Frame.nextHeaderICMPv6, hopLimit: 64, upperLayer: body)
        }
        #expect(!take(echoReply(from: mac("02:00:00:00:00:77"))), "another host answering ff02::1")
        #expect(!take(echoReply(identifier: 7)), "another echo's reply")
        #expect(!take(echoReply(address: v6("fd00:d0c::1"))), "a global source is no router for an RA")
        #expect(!take(advertisement(target: Self.eui64, option: mac("02:00:00:00:00:77"))), "EUI-64 address owned by another MAC")
        #expect(discovery.stage == .askingForLinkLocal(gatewayMAC: Self.gatewayMAC))
        #expect(take(echoReply()))
        #expect(discovery.stage == .found(GatewayLinkLocal(address: Self.stablePrivacy, mac: Self.gatewayMAC, method: .echo)))
        #expect(discovery.probes().isEmpty)
    }

    @Test func otherHostsTrafficOnTheLinkDoesNotDisturbTheDiscovery() throws {
        let stranger = mac("02:00:00:00:00:77")
        let noise = IPv6Frame.build(sourceMAC: stranger, destinationMAC: Self.localMAC, source: .linkLocal(eui64: stranger), destination: Self.local,
                                    nextHeader: IPv6Frame.nextHeaderICMPv6, hopLimit: 64,
                                    upperLayer: [ICMPv6Type.echoReply, 0, 0, 0, 0x4B, 0x4C, 0, 1])
        let link = SimulatedGatewayLink(addresses: [Self.global, Self.eui64], noise: [noise, [1, 2, 3]])
        #expect(try GatewayDiscoveryRun.discover(Self.discovery(), over: link, schedule: Self.fast).address == Self.eui64)
    }

    @Test func aMissingInterfaceIsASocketError() {
        #expect {
            try GatewayProbe.discover(gateway: Self.global, interfaceName: "kl6gw-none0", localLinkLocal: nil)
        } throws: { error in
            guard case .socket(let cause) = error as? GatewayDiscoveryError else { return false }
            return "\(cause)".contains("kl6gw-none0")
        }
    }

    @Test func solicitedNodeGroups() {
        #expect(v6("fd00:d0c::1").solicitedNodeMulticast == v6("ff02::1:ff00:1"))
        #expect(v6("fe80::42:acff:fe11:2233").solicitedNodeMulticast == v6("ff02::1:ff11:2233"))
    }
}
