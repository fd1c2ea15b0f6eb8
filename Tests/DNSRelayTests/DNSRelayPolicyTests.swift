import DNSRelay
import NetworkTypes
import PropertyBased
import Testing

/// The relay's pure decisions: who is answered, what is a query, what is its answer, and how a
/// TCP stream splits into messages.
@Suite struct DNSRelayPolicyTests {
    static let vm = IPv4Address(10, 42, 0, 7)
    static let configuration = DNSRelayConfiguration(
        listenAddress: IPv4Address(169, 254, 7, 9), upstreams: [IPv4Address(127, 0, 0, 11)], clients: [vm],
        limits: DNSRelayLimits(maxUDPQueries: 2, maxTCPConnections: 1, maxQueryBytes: 100))
    static let policy = DNSRelayPolicy(configuration: configuration)

    /// A query header with `id`, RD set, one question, then `extra` bytes.
    static func query(id: UInt16, flags: UInt8 = 0x01, extra: [UInt8] = [0, 0, 1, 0, 1]) -> [UInt8] {
        [UInt8(id >> 8), UInt8(id & 0xFF), flags, 0, 0, 1, 0, 0, 0, 0, 0, 0] + extra
    }

    @Test func queriesFromTheVMAreForwardedWithTheirID() {
        #expect(Self.policy.admitUDP(Self.query(id: 0xBEEF), from: Self.vm, inFlight: 0) == .forward(id: 0xBEEF))
        #expect(Self.policy.admitUDP(Self.query(id: 7), from: Self.vm, inFlight: 1) == .forward(id: 7))
    }

    @Test func everythingElseIsDropped() {
        let other = IPv4Address(10, 42, 0, 8)
        #expect(Self.policy.admitUDP(Self.query(id: 1), from: other, inFlight: 0) == .drop(.foreignSource(other)))
        #expect(Self.policy.admitUDP(Self.query(id: 1), from: Self.vm, inFlight: 2) == .drop(.busy(limit: 2)))
        #expect(Self.policy.admitUDP(Array(Self.query(id: 1).prefix(11)), from: Self.vm, inFlight: 0) == .drop(.tooShort(11)))
        #expect(Self.policy.admitUDP(Self.query(id: 1, extra: Array(repeating: 0, count: 89)), from: Self.vm, inFlight: 0) == .drop(.tooLarge(101)))
        #expect(Self.policy.admitUDP(Self.query(id: 1, extra: Array(repeating: 0, count: 88)), from: Self.vm, inFlight: 0) == .forward(id: 1))
        #expect(Self.policy.admitUDP(Self.query(id: 1, flags: 0x81), from: Self.vm, inFlight: 0) == .drop(.notAQuery))
        #expect(Self.policy.admitTCP(from: other, open: 0) == .foreignSource(other))
        #expect(Self.policy.admitTCP(from: Self.vm, open: 1) == .busy(limit: 1))
        #expect(Self.policy.admitTCP(from: Self.vm, open: 0) == nil)
    }

    @Test func onlyAnAnswerWithTheQueryIDIsPassedBack() {
        let answer = Self.query(id: 0x1234, flags: 0x81)
        #expect(DNSRelayPolicy.isAnswer(answer, to: 0x1234))
        #expect(!DNSRelayPolicy.isAnswer(answer, to: 0x1235))
        #expect(!DNSRelayPolicy.isAnswer(Self.query(id: 0x1234), to: 0x1234), "a query is not an answer")
        #expect(!DNSRelayPolicy.isAnswer(Array(answer.prefix(11)), to: 0x1234))
        // Truncated answers (TC, 0x02) are answers too: the VM retries over TCP itself.
        #expect(DNSRelayPolicy.isAnswer(Self.query(id: 9, flags: 0x83), to: 9))
    }

    @Test func limitsBoundTheMemory() {
        // Defaults: 64 UDP queries of up to 4 KiB, 16 TCP connections with one 64 KiB answer each.
        #expect(DNSRelayLimits().bufferBound <= 2 * 1024 * 1024)
        #expect(DNSRelayLimits(maxUDPQueries: 1, maxTCPConnections: 0, maxQueryBytes: 512).bufferBound == 512 + 65536)
    }

    /// A stream of messages, cut anywhere, reads back as the same messages.
    @Test func framerSplitsAnyCutOfAStream() async {
        let messages = Gen.uint8().array(of: 0...120).array(of: 1...6)
        let cuts = Gen.int(in: 1...50).array(of: 1...40)
        await propertyCheck(input: messages, cuts) { messages, cuts in
            let stream = messages.flatMap { [UInt8($0.count >> 8), UInt8($0.count & 0xFF)] + $0 }
            var framer = DNSStreamFramer(maxMessage: 200)
            var counter = DNSStreamCounter()
            var read: [[UInt8]] = []
            var counted = 0
            var rest = stream[...]
            var cut = cuts.makeIterator()
            while !rest.isEmpty {
                let chunk = rest.prefix(cut.next() ?? rest.count)
                rest = rest.dropFirst(chunk.count)
                read += try framer.append(chunk)
                counted += counter.count(chunk)
            }
            #expect(read == messages)
            #expect(counted == messages.count)
            #expect(framer.bufferedBytes == 0)
        }
    }

    @Test func framerRefusesAnOversizedMessage() throws {
        var framer = DNSStreamFramer(maxMessage: 100)
        #expect(try framer.append([0, 100] + Array(repeating: 1, count: 100)) == [Array(repeating: 1, count: 100)])
        #expect(throws: DNSStreamFramer.Oversized(length: 101)) { try framer.append([0, 101]) }
    }
}
