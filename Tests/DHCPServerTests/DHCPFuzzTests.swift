import DHCPServer
import NetworkTypes
import PropertyBased
import TestSupport
import Testing

/// Random and mutated packets: decoding and the whole per-packet path never crash, and every
/// message the encoder can express reads back unchanged.
@Suite struct DHCPFuzzTests {
    static let serverMAC = mac("02:00:00:00:00:01")
    static let logic = DHCPResponderLogic(lease: Sample.lease)

    /// Valid client packets of every kind, the seeds the mutations start from.
    static let seeds: [[UInt8]] = {
        let ours = Sample.lease.address.address
        let requests = [
            Sample.request(.discover, extra: [DHCPOption(.parameterRequestList, [1, 3, 6, 15, 26, 119, 121])]),
            Sample.request(.request, requested: ours, server: Sample.serverID),
            Sample.request(.request, ciaddr: ours),
            Sample.request(.request, requested: ip("1.2.3.4")),
            Sample.request(.inform, ciaddr: ours),
            Sample.request(.decline, requested: ours, server: Sample.serverID),
            Sample.request(.release, ciaddr: ours),
            Sample.request(.discover, giaddr: ip("10.0.0.1"), broadcast: true),
        ]
        return requests.map { $0.encoded() } + [DHCPMessageTests.handBuiltDiscover()]
    }()

    /// One mutation of a seed: flip, set, insert, delete or truncate at a random position.
    static let mutatedPacket = zip(
        Gen.int(in: 0..<seeds.count),
        Gen.int(in: 0...4).array(of: 1...6),
        Gen.int(in: 0...100_000).array(of: 6),
        Gen.uint8().array(of: 6)
    ).map { (input: (Int, [Int], [Int], [UInt8])) -> [UInt8] in
        let (seedIndex, kinds, positions, values) = input
        return mutateBytes(seeds[seedIndex], kinds: kinds, positions: positions, values: values)
    }

    /// Exercises everything a received packet can reach and checks what must hold whatever the
    /// bytes: the server calls a packet undecodable exactly when the decoder refuses it; it answers
    /// only the leased client, with the request's transaction, as a reply; every reply it sends is
    /// well-formed on the wire and carries exactly the reply it decided on.
    static func survive(_ packet: [UInt8]) {
        let decoded = try? DHCPMessage(decoding: packet)
        switch logic.process(packet: packet, serverMAC: serverMAC) {
        case .undecodable:
            #expect(decoded == nil, "undecodable only when the decoder refuses the bytes")
        case .ignored(let message, let reason):
            #expect(message == decoded, "the message the decision was made on is the decoded packet")
            #expect(logic.decision(for: message) == .ignore(reason), "the decision is a function of the message")
        case .reply(let request, let reply, let transmission):
            #expect(request == decoded)
            #expect(request.op == .request, "only BOOTREQUESTs are answered")
            #expect(MACAddress(Array(request.chaddr.prefix(6))) == Sample.lease.clientMAC, "only the leased client is answered")
            #expect(reply.message.xid == request.xid)
            #expect(reply.message.op == .reply)
            #expect(reply.message.chaddr == request.chaddr)
            guard case .frame(let frame) = transmission else { return }
            let parsed = UDPFrame.parse(frame)
            #expect(parsed?.udpChecksumValid == true)
            #expect(parsed?.ipChecksumValid == true)
            #expect(parsed?.sourceMAC == serverMAC)
            #expect(parsed?.sourceIP == Sample.lease.serverIdentifier)
            #expect(parsed?.sourcePort == DHCPPorts.server && parsed?.destinationPort == DHCPPorts.client)
            let wire = parsed?.payload ?? []
            #expect((try? DHCPMessage(decoding: wire)) == reply.message, "the bytes sent read back as the reply decided on")
        }
    }

    @Test func mutatedValidPacketsNeverCrash() async {
        await propertyCheck(count: 4000, input: Self.mutatedPacket) { packet in
            Self.survive(packet)
        }
    }

    @Test func randomBytesNeverCrash() async {
        await propertyCheck(count: 1500, input: Gen.uint8().array(of: 0...700)) { packet in
            Self.survive(packet)
        }
    }

    /// Random bytes behind a valid header and cookie, so option parsing is what gets fuzzed.
    @Test func randomOptionAreasNeverCrash() async {
        let header = Array(Sample.request(.discover).encoded().prefix(240))
        await propertyCheck(count: 2000, input: Gen.uint8().array(of: 0...400)) { options in
            Self.survive(header + options)
        }
    }

    /// A name as the encoder writes it: its labels joined by dots, no trailing dot.
    static func canonical(_ name: String) -> String? {
        DomainNameEncoding.labels(of: name).map { $0.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".") }
    }

    /// Option values the decoders face: they return nil or a value, never crash, and what they
    /// return encodes back to an equal value (names: every valid one, in its canonical form).
    @Test func optionValueDecodersNeverCrash() async {
        await propertyCheck(count: 2000, input: Gen.uint8().array(of: 0...300)) { data in
            if let names = DomainNameEncoding.decode(data) {
                let valid = names.compactMap(Self.canonical)
                #expect(DomainNameEncoding.decode(DomainNameEncoding.encode(valid)) == valid)
                #expect(DomainNameEncoding.decode(DomainNameEncoding.encode(names)) == valid, "invalid names are skipped, valid ones kept")
            }
            if let routes = ClasslessRouteEncoding.decode(data) {
                #expect(ClasslessRouteEncoding.decode(ClasslessRouteEncoding.encode(routes)) == routes)
            }
        }
    }

    static let option = zip(
        Gen.uint8(in: 1...254).filter { $0 != DHCPOptionCode.overload.rawValue },
        Gen.uint8().array(of: 0...300)
    ).map { code, data in DHCPOption(DHCPOptionCode(code), data) }

    /// op, htype, hlen, xid, flags.
    static let header = zip(Gen.bool, Gen.uint8(), Gen.uint8(in: 0...16), Gen.uint32(), Gen.uint16())
    /// ciaddr, yiaddr, siaddr, giaddr.
    static let addresses = Gen.uint32().array(of: 4).map { $0.map(IPv4Address.init) }
    /// A field as the decoder returns it: without trailing zero padding.
    static func trimmed(_ bytes: [UInt8]) -> [UInt8] {
        guard let last = bytes.lastIndex(where: { $0 != 0 }) else { return [] }
        return Array(bytes[...last])
    }
    static let fields = zip(
        Gen.uint8().array(of: 16),
        Gen.uint8().array(of: 0...64).map { trimmed($0) },
        Gen.uint8().array(of: 0...128).map { trimmed($0) })

    static let message = zip(header, addresses, fields, option.array(of: 0...8)).map {
        (input: ((Bool, UInt8, UInt8, UInt32, UInt16), [IPv4Address], ([UInt8], [UInt8], [UInt8]), [DHCPOption])) -> DHCPMessage in
        let ((reply, htype, hlen, xid, flags), addresses, (chaddr, sname, file), options) = input
        return DHCPMessage(
            op: reply ? .reply : .request, htype: htype, hlen: hlen, hops: UInt8(truncatingIfNeeded: xid),
            xid: xid, secs: flags &+ 1, flags: flags,
            ciaddr: addresses[0], yiaddr: addresses[1], siaddr: addresses[2], giaddr: addresses[3],
            chaddr: chaddr, sname: sname, file: file, options: DHCPOptions(options))
    }

    @Test func encodeThenDecodeIsIdentity() async throws {
        await propertyCheck(count: 1500, input: Self.message) { message in
            let decoded = try DHCPMessage(decoding: message.encoded())
            #expect(decoded == message)
        }
    }

    static let route = zip(Gen.uint32(), Gen.int(in: 0...32), Gen.uint32()).map { (input: (UInt32, Int, UInt32)) in
        let (destination, prefix, gateway) = input
        let network = IPv4Interface(address: IPv4Address(destination), prefixLength: prefix).network
        return DHCPStaticRoute(destination: IPv4Interface(address: network, prefixLength: prefix), gateway: IPv4Address(gateway))
    }

    @Test func classlessRoutesRoundTrip() async {
        await propertyCheck(count: 1000, input: Self.route.array(of: 0...20)) { routes in
            #expect(ClasslessRouteEncoding.decode(ClasslessRouteEncoding.encode(routes)) == routes)
        }
    }

    static let domain = Gen.element(of: ["a", "svc", "cluster", "local", "example", "com", "x-1", "corp"])
        .map { $0! }.array(of: 1...5).map { $0.joined(separator: ".") }

    @Test func searchListsRoundTripWithCompression() async {
        await propertyCheck(count: 1000, input: Self.domain.array(of: 0...8)) { names in
            let encoded = DomainNameEncoding.encode(names)
            #expect(DomainNameEncoding.decode(encoded) == names)
            #expect(encoded.count <= names.reduce(0) { $0 + $1.utf8.count + 2 })
        }
    }
}
