import NetworkTypes

/// Learns the link-local address of an IPv6 gateway that the container knows only by a global
/// address on the link (Docker's `default via fd00:…::1`). A VM accepts a default router only from
/// a Router Advertisement whose source is link-local, and that source becomes its next hop, so the
/// advertisement must come from a link-local address the real gateway answers for. Pure: the frames
/// to send in each stage, and what a received frame proves; ``GatewayDiscoveryRun`` drives it over
/// a ``LinkFrameChannel``.
///
/// 1. **The gateway's MAC**: a Neighbor Solicitation for the global gateway address (to its
///    solicited-node group, with our link-layer address so the gateway can answer at once). The
///    Neighbor Advertisement's target link-layer address (or, without one, its Ethernet source) is
///    the gateway's MAC. (The advertisement's IPv6 source is the global address itself: Linux
///    answers from the target, so it does not tell the link-local address.)
/// 2. **Its link-local address**, two questions at once, both to that MAC only:
///    - an Echo Request to ff02::1 in a frame addressed to the gateway's MAC: only the gateway
///      receives it, and it answers from the link-local address it picks for our link-local source
///      (whatever way it made it: EUI-64, stable privacy, random);
///    - a Neighbor Solicitation for fe80::EUI-64(gateway MAC), answered even by a gateway that
///      ignores multicast echo requests, when that is its address.
///    The first answer whose Ethernet source (echo) or target link-layer address (solicitation) is
///    the gateway's MAC gives the address.
package struct GatewayLinkLocalDiscovery: Sendable, Equatable {
    /// The gateway's global address.
    package let gateway: IPv6Address
    /// The container interface's MAC (the probes' Ethernet source and link-layer option).
    package let localMAC: MACAddress
    /// The probes' IPv6 source: a link-local address of the container interface.
    package let localLinkLocal: IPv6Address
    /// The echo requests' identifier, to tell their replies from others.
    package let identifier: UInt16
    package private(set) var stage: Stage

    package enum Stage: Sendable, Equatable {
        case resolvingGatewayMAC
        case askingForLinkLocal(gatewayMAC: MACAddress)
        case found(GatewayLinkLocal)
    }

    package init(gateway: IPv6Address, localMAC: MACAddress, localLinkLocal: IPv6Address, identifier: UInt16) {
        self.gateway = gateway
        self.localMAC = localMAC
        self.localLinkLocal = localLinkLocal
        self.identifier = identifier
        stage = .resolvingGatewayMAC
    }

    /// The frames to send (again) in the current stage; none once found.
    package func probes() -> [[UInt8]] {
        switch stage {
        case .resolvingGatewayMAC:
            return [neighborSolicitation(target: gateway)]
        case .askingForLinkLocal(let mac):
            var echo: [UInt8] = [ICMPv6Type.echoRequest, 0, 0, 0]
            echo.append16(identifier)
            echo.append16(1)
            echo += Array("kvm-launch gateway probe".utf8)
            let request = IPv6Frame.build(sourceMAC: localMAC, destinationMAC: mac, source: localLinkLocal,
                                          destination: .allNodes, nextHeader: IPv6Frame.nextHeaderICMPv6, hopLimit: 255, upperLayer: echo)
            return [request, neighborSolicitation(target: IPv6Address.linkLocal(eui64: mac))]
        case .found:
            return []
        }
    }

    /// Takes one received frame; returns true when it moved the discovery on.
    /// `checksumUnverifiable`: offload left its checksum unfilled (a local sender such as a veth peer).
    @discardableResult
    package mutating func receive(_ bytes: some Collection<UInt8>, checksumUnverifiable: Bool = false) -> Bool {
        guard let frame = IPv6Frame.parse(bytes), frame.nextHeader == IPv6Frame.nextHeaderICMPv6,
              frame.checksumValid || checksumUnverifiable, frame.destinationMAC == localMAC,
              let type = frame.upperLayer.first else { return false }
        switch stage {
        case .resolvingGatewayMAC:
            guard type == ICMPv6Type.neighborAdvertisement,
                  let advertisement = NeighborAdvertisement(decoding: frame.upperLayer, hopLimit: frame.hopLimit),
                  advertisement.target == gateway, advertisement.solicited else { return false }
            let mac = advertisement.targetLinkLayerAddress ?? frame.sourceMAC
            guard !mac.isZero, !mac.isMulticast else { return false }
            stage = .askingForLinkLocal(gatewayMAC: mac)
            return true
        case .askingForLinkLocal(let mac):
            if type == ICMPv6Type.echoReply, frame.sourceMAC == mac, frame.source.isLinkLocal, frame.destination == localLinkLocal,
               frame.upperLayer.count >= 8, frame.upperLayer[1] == 0,
               UInt16(frame.upperLayer[4]) << 8 | UInt16(frame.upperLayer[5]) == identifier {
                stage = .found(GatewayLinkLocal(address: frame.source, mac: mac, method: .echo))
                return true
            }
            let candidate = IPv6Address.linkLocal(eui64: mac)
            if type == ICMPv6Type.neighborAdvertisement,
               let advertisement = NeighborAdvertisement(decoding: frame.upperLayer, hopLimit: frame.hopLimit),
               advertisement.target == candidate, (advertisement.targetLinkLayerAddress ?? frame.sourceMAC) == mac {
                stage = .found(GatewayLinkLocal(address: candidate, mac: mac, method: .eui64))
                return true
            }
            return false
        case .found:
            return false
        }
    }

    /// A Neighbor Solicitation for `target` to its solicited-node group, with our link-layer address.
    func neighborSolicitation(target: IPv6Address) -> [UInt8] {
        let group = target.solicitedNodeMulticast
        var message: [UInt8] = [ICMPv6Type.neighborSolicitation, 0, 0, 0, 0, 0, 0, 0] + target.octets
        message += NDOption(type: NDOption.sourceLinkLayerAddress, data: localMAC.octets).encoded
        return IPv6Frame.build(sourceMAC: localMAC, destinationMAC: group.multicastMAC, source: localLinkLocal,
                               destination: group, nextHeader: IPv6Frame.nextHeaderICMPv6, hopLimit: 255, upperLayer: message)
    }
}

/// What ``GatewayLinkLocalDiscovery`` learned: the gateway's link-local address and MAC.
package struct GatewayLinkLocal: Sendable, Equatable, CustomStringConvertible {
    package var address: IPv6Address
    package var mac: MACAddress
    package var method: Method

    package enum Method: String, Sendable, Equatable {
        /// It answered the echo request to ff02::1 sent to its MAC.
        case echo
        /// It answered the Neighbor Solicitation for fe80::EUI-64 of its MAC.
        case eui64
    }

    package init(address: IPv6Address, mac: MACAddress, method: Method) {
        self.address = address
        self.mac = mac
        self.method = method
    }

    package var description: String { "\(address) (\(mac), by \(method == .echo ? "an echo request to ff02::1" : "its EUI-64 address"))" }
}

/// A Neighbor Advertisement (RFC 4861 section 4.4), validated as section 7.1.2 asks (hop limit 255,
/// code 0, at least 24 bytes, target not multicast, options well formed).
package struct NeighborAdvertisement: Sendable, Equatable {
    package var router: Bool
    package var solicited: Bool
    package var override: Bool
    package var target: IPv6Address
    /// Option 2, when present.
    package var targetLinkLayerAddress: MACAddress?

    package init?(decoding message: [UInt8], hopLimit: UInt8) {
        var reader = WireReader(message)
        guard hopLimit == 255, reader.uint8() == ICMPv6Type.neighborAdvertisement, reader.uint8() == 0, reader.uint16() != nil,
              let flags = reader.uint8(), reader.bytes(3) != nil, let target = reader.bytes(16),
              let options = NDOption.decodeAll(reader.rest()) else { return nil }
        self.target = IPv6Address(target)
        guard !self.target.isMulticast else { return nil }
        router = flags & 0x80 != 0
        solicited = flags & 0x40 != 0
        override = flags & 0x20 != 0
        targetLinkLayerAddress = options.first { $0.type == NDOption.targetLinkLayerAddress && $0.data.count >= 6 }
            .map { MACAddress(Array($0.data.prefix(6))) }
    }
}

/// The OS seam of the discovery: whole Ethernet frames out and in on one interface.
package protocol LinkFrameChannel: ~Copyable {
    /// The interface's MAC.
    var interfaceMAC: MACAddress { get }
    func send(frame: [UInt8]) throws(IPv6ServerError)
    /// The next frame from another host within `timeoutMilliseconds`; nil when none came.
    func receive(timeoutMilliseconds: Int32) throws(IPv6ServerError) -> (frame: [UInt8], checksumUnverifiable: Bool)?
}

/// How long the discovery asks: `rounds` sends per stage, each followed by up to `roundMilliseconds`
/// of listening (bounded: at most 2 × rounds × roundMilliseconds in all).
package struct GatewayDiscoverySchedule: Sendable, Equatable {
    package var rounds: Int
    package var roundMilliseconds: Int32

    package init(rounds: Int = 3, roundMilliseconds: Int32 = 700) {
        self.rounds = max(1, rounds)
        self.roundMilliseconds = max(1, roundMilliseconds)
    }

    /// The longest one stage waits, in seconds, as the warnings state it.
    package var stageSeconds: Double { Double(rounds) * Double(roundMilliseconds) / 1000 }
}

/// Why the gateway's link-local address is unknown.
package enum GatewayDiscoveryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No Neighbor Advertisement for the global address: the gateway is absent or down.
    case gatewaySilent(gateway: IPv6Address, seconds: Double)
    /// It answered for the global address, but neither the echo request nor its EUI-64 address.
    case noLinkLocalAnswer(gateway: IPv6Address, mac: MACAddress, seconds: Double)
    /// The probe socket failed.
    case socket(IPv6ServerError)

    package var description: String {
        switch self {
        case .gatewaySilent(let gateway, let seconds):
            "the IPv6 gateway \(gateway) did not answer a Neighbor Solicitation within \(seconds) s"
        case .noLinkLocalAnswer(let gateway, let mac, let seconds):
            "the IPv6 gateway \(gateway) (\(mac)) answered for its address but not, within \(seconds) s, an echo request to ff02::1 nor a Neighbor Solicitation for \(IPv6Address.linkLocal(eui64: mac)), so its link-local address is unknown"
        case .socket(let error): "learning the IPv6 gateway's link-local address failed: \(error)"
        }
    }

    package static func == (lhs: GatewayDiscoveryError, rhs: GatewayDiscoveryError) -> Bool {
        lhs.description == rhs.description
    }
}

/// Drives a ``GatewayLinkLocalDiscovery`` over a channel with a bounded schedule.
package enum GatewayDiscoveryRun {
    /// Sends each stage's probes up to `schedule.rounds` times and reads answers between sends.
    /// A channel that returns nil at once (a test's) makes a round end at once, so tests never wait.
    package static func discover(
        _ discovery: GatewayLinkLocalDiscovery, over channel: borrowing some LinkFrameChannel & ~Copyable,
        schedule: GatewayDiscoverySchedule = GatewayDiscoverySchedule()
    ) throws(GatewayDiscoveryError) -> GatewayLinkLocal {
        var discovery = discovery
        var round = 0
        var stageSeen = discovery.stage
        while round < schedule.rounds {
            round += 1
            do {
                for probe in discovery.probes() { try channel.send(frame: probe) }
                var remaining = schedule.roundMilliseconds
                let deadline = ContinuousClock.now + .milliseconds(Int(remaining))
                while remaining > 0, let received = try channel.receive(timeoutMilliseconds: remaining) {
                    if discovery.receive(received.frame, checksumUnverifiable: received.checksumUnverifiable) {
                        if case .found(let result) = discovery.stage { return result }
                        // The next stage starts with fresh rounds and sends its probes at once.
                        break
                    }
                    let left = deadline - ContinuousClock.now
                    remaining = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
                }
            } catch {
                throw .socket(error)
            }
            if discovery.stage != stageSeen {
                stageSeen = discovery.stage
                round = 0
            }
        }
        switch discovery.stage {
        case .resolvingGatewayMAC: throw .gatewaySilent(gateway: discovery.gateway, seconds: schedule.stageSeconds)
        case .askingForLinkLocal(let mac): throw .noLinkLocalAnswer(gateway: discovery.gateway, mac: mac, seconds: schedule.stageSeconds)
        case .found(let result): return result
        }
    }
}

extension IPv6Address {
    /// ff02::1:ffXX:XXXX, the solicited-node group of this address (RFC 4291 section 2.7.1).
    package var solicitedNodeMulticast: IPv6Address {
        IPv6Address([0xFF, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF] + octets[13..<16])
    }
}
