import IPv6Server
import NetworkTypes
import PropertyBased
import TestSupport
import Testing

/// Random and mutated frames: the whole per-frame path never crashes, and whatever it answers is a
/// well-formed frame to the VM only.
@Suite struct IPv6FuzzTests {
    static let seeds: [[UInt8]] = {
        let ours = Sample.lease.serverDUID
        let messages = [
            Sample.message(.solicit, extra: [Sample.ia(), DHCPv6Option(DHCPv6OptionCode.rapidCommit, []),
                                             DHCPv6Option(DHCPv6OptionCode.optionRequest, [0, 23, 0, 24])]),
            Sample.message(.request, server: ours, extra: [Sample.ia(addresses: [v6("fd00:1::5")])]),
            Sample.message(.renew, server: ours),
            Sample.message(.rebind, extra: [Sample.ia(addresses: [v6("fd00:1::5"), v6("fd00:9::1")])]),
            Sample.message(.confirm, extra: [Sample.ia(addresses: [v6("fd00:1::5")])]),
            Sample.message(.informationRequest, extra: []),
            Sample.message(.decline, server: ours, extra: [Sample.ia(addresses: [v6("fd00:1::5")])]),
            Sample.message(.solicit, extra: [DHCPv6Option(DHCPv6OptionCode.iaTA, [0, 0, 0, 1]),
                                             DHCPv6Option(DHCPv6OptionCode.iaPD, Array(repeating: 0, count: 12))]),
        ]
        return messages.map { Sample.frame($0) } + [Sample.solicitation(), Sample.solicitation(sourceAddress: .unspecified, linkLayerOption: false)]
    }()

    /// Mutations of a seed's bytes after the checksum-covered headers, with the frame rebuilt so the
    /// checksum is right and the mutation reaches the decoders (a bad checksum would stop it early);
    /// `keepChecksum` false leaves the raw mutation for the frame parser.
    static func mutate(_ frame: [UInt8], kinds: [Int], positions: [Int], values: [UInt8], keepChecksum: Bool) -> [UInt8] {
        guard keepChecksum, let parsed = IPv6Frame.parse(frame) else { return mutateBytes(frame, kinds: kinds, positions: positions, values: values) }
        let body = mutateBytes(parsed.upperLayer, kinds: kinds, positions: positions, values: values)
        var upper = body
        if parsed.nextHeader == IPv6Frame.nextHeaderUDP, upper.count >= 8 {
            upper[4] = UInt8(truncatingIfNeeded: upper.count >> 8)
            upper[5] = UInt8(truncatingIfNeeded: upper.count)
            upper[6] = 0
            upper[7] = 0
        } else if upper.count >= 4 {
            upper[2] = 0
            upper[3] = 0
        }
        return IPv6Frame.build(sourceMAC: parsed.sourceMAC, destinationMAC: parsed.destinationMAC, source: parsed.source,
                               destination: parsed.destination, nextHeader: parsed.nextHeader, hopLimit: parsed.hopLimit, upperLayer: upper)
    }

    static let mutated = zip(
        Gen.int(in: 0..<seeds.count), Gen.int(in: 0...4).array(of: 1...6), Gen.int(in: 0...100_000).array(of: 6),
        Gen.uint8().array(of: 6), Gen.bool
    ).map { (input: (Int, [Int], [Int], [UInt8], Bool)) -> [UInt8] in
        mutate(seeds[input.0], kinds: input.1, positions: input.2, values: input.3, keepChecksum: input.4)
    }

    static func survive(_ frame: [UInt8]) {
        switch Sample.logic.process(frame: frame, serverMAC: Sample.serverMAC) {
        case .notForUs:
            break
        case .ignored(let reason):
            #expect(!reason.description.isEmpty)
        case .reply(let summary, let out):
            #expect(!summary.isEmpty)
            let parsed = IPv6Frame.parse(out)
            #expect(parsed?.checksumValid == true)
            #expect(parsed?.destinationMAC == Sample.vmMAC, "a reply left for \(String(describing: parsed?.destinationMAC))")
            if let udp = parsed?.udp {
                #expect((try? DHCPv6Message(decoding: udp.payload)) != nil, "the reply does not decode")
            }
        }
    }

    @Test func mutatedFramesNeverCrash() async {
        await propertyCheck(count: 4000, input: Self.mutated) { Self.survive($0) }
    }

    @Test func randomBytesNeverCrash() async {
        await propertyCheck(count: 1500, input: Gen.uint8().array(of: 0...400)) { Self.survive($0) }
    }

    /// Random DHCPv6 payloads inside valid frames from the VM: the message decoder and the decision are fuzzed.
    @Test func randomDHCPv6PayloadsNeverCrash() async {
        await propertyCheck(count: 3000, input: Gen.uint8().array(of: 0...300)) { payload in
            let frame = IPv6Frame.build(sourceMAC: Sample.vmMAC, destinationMAC: IPv6Address.allDHCPServersAndRelays.multicastMAC,
                                        source: Sample.vmLinkLocal, destination: .allDHCPServersAndRelays, nextHeader: 17, hopLimit: 1,
                                        upperLayer: IPv6Frame.udp(sourcePort: 546, destinationPort: 547, payload: payload))
            Self.survive(frame)
        }
    }

    /// Random ICMPv6 bodies that claim to be Router Solicitations.
    @Test func randomSolicitationsNeverCrash() async {
        await propertyCheck(count: 2000, input: Gen.uint8().array(of: 0...120)) { body in
            let frame = IPv6Frame.build(sourceMAC: Sample.vmMAC, destinationMAC: IPv6Address.allRouters.multicastMAC,
                                        source: Sample.vmLinkLocal, destination: .allRouters, nextHeader: 58, hopLimit: 255,
                                        upperLayer: [133, 0, 0, 0] + body)
            Self.survive(frame)
            _ = RouterAdvertisement(decoding: [134, 0, 0, 0] + body)
            _ = NDOption.decodeAll(body)
        }
    }

    /// Every message the encoder can express reads back unchanged.
    @Test func encodedMessagesRoundTrip() async {
        let option = zip(Gen.int(in: 0...40), Gen.uint8().array(of: 0...40)).map { DHCPv6Option(UInt16($0.0), $0.1) }
        await propertyCheck(count: 1000, input: zip(Gen.uint8(), Gen.int(in: 0...0xFF_FFFF), option.array(of: 0...8))) { input in
            let (type, id, options) = input
            guard type != 12, type != 13 else { return }
            let message = DHCPv6Message(type: type, transactionID: UInt32(id), options: options)
            #expect((try? DHCPv6Message(decoding: message.encoded())) == message)
        }
    }
}
