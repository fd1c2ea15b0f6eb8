import DHCPServer
import NetworkTypes
import Testing

@Suite struct DHCPResponderLogicTests {
    let logic = DHCPResponderLogic(lease: Sample.lease)
    let ours = Sample.lease.address.address

    // MARK: DISCOVER

    @Test func offersTheLeaseWithAllConfiguredOptions() throws {
        let reply = try #require(logic.reply(to: Sample.request(.discover)))
        let offer = reply.message
        #expect(offer.op == .reply)
        #expect(offer.messageType == .offer)
        #expect(offer.xid == 0x1234_5678)
        #expect(offer.yiaddr == ours)
        #expect(offer.ciaddr == IPv4Address(0) && offer.siaddr == IPv4Address(0))
        #expect(offer.chaddr == Sample.request(.discover).chaddr)
        #expect(offer.serverIdentifier == Sample.serverID)
        #expect(offer.options[.messageType] == [2])
        #expect(offer.options.entries.first?.code == .messageType)
        #expect(offer.options[.subnetMask] == [255, 255, 255, 0])
        #expect(offer.options[.broadcastAddress] == [10, 42, 0, 255])
        #expect(offer.options[.router] == [10, 42, 0, 1])
        #expect(offer.options[.domainNameServer] == [10, 43, 0, 10, 1, 1, 1, 1])
        #expect(offer.options[.domainName] == Array("example.internal".utf8))
        #expect(offer.options[.hostName] == Array("vm-0".utf8))
        #expect(offer.options[.interfaceMTU] == [0x05, 0xAA])  // 1450
        #expect(offer.options[.leaseTime] == [0, 0, 0x0E, 0x10])  // 3600
        #expect(offer.options[.renewalTime] == [0, 0, 0x07, 0x08])  // 1800
        #expect(offer.options[.rebindingTime] == [0, 0, 0x0C, 0x4E])  // 3150
        #expect(DomainNameEncoding.decode(offer.options[.domainSearch] ?? []) == Sample.lease.searchDomains)
        #expect(ClasslessRouteEncoding.decode(offer.options[.classlessStaticRoute] ?? []) == [
            DHCPStaticRoute(destination: cidr("192.168.50.0/24"), gateway: ip("10.42.0.254")),
            DHCPStaticRoute(destination: cidr("0.0.0.0/0"), gateway: ip("10.42.0.1")),
        ])
    }

    @Test func infiniteLeaseOmitsRenewalTimes() throws {
        var lease = Sample.lease
        lease.leaseSeconds = DHCPLease.infinite
        let offer = try #require(DHCPResponderLogic(lease: lease).reply(to: Sample.request(.discover))).message
        #expect(offer.options[.leaseTime] == [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(offer.options[.renewalTime] == nil && offer.options[.rebindingTime] == nil)
    }

    @Test func minimalLeaseCarriesOnlyWhatIsSet() throws {
        let lease = DHCPLease(clientMAC: Sample.clientMAC, address: cidr("10.0.0.5/32"), serverIdentifier: Sample.serverID)
        let offer = try #require(DHCPResponderLogic(lease: lease).reply(to: Sample.request(.discover))).message
        #expect(Set(offer.options.entries.map(\.code)) == [.messageType, .serverIdentifier, .leaseTime, .subnetMask])
        #expect(offer.options[.subnetMask] == [255, 255, 255, 255])
    }

    @Test func calicoStyleLeaseRoutesToTheGatewayFirst() throws {
        let lease = DHCPLease(
            clientMAC: Sample.clientMAC, address: cidr("10.0.0.5/32"), serverIdentifier: Sample.serverID,
            router: ip("169.254.1.1"),
            staticRoutes: [DHCPStaticRoute(destination: cidr("169.254.1.1/32"), gateway: IPv4Address(0))])
        let offer = try #require(DHCPResponderLogic(lease: lease).reply(to: Sample.request(.discover))).message
        #expect(offer.options[.classlessStaticRoute] == [32, 169, 254, 1, 1, 0, 0, 0, 0, 0, 169, 254, 1, 1])
        #expect(offer.options[.router] == [169, 254, 1, 1])
    }

    @Test func echoesTheClientIdentifier() throws {
        let request = Sample.request(.discover, extra: [DHCPOption(.clientIdentifier, [1] + Sample.clientMAC.octets)])
        #expect(logic.reply(to: request)?.message.options[.clientIdentifier] == [1] + Sample.clientMAC.octets)
    }

    // MARK: REQUEST in each client state (RFC 2131 section 4.3.2)

    @Test func selectingRequestForOurOfferIsAcked() throws {
        let reply = try #require(logic.reply(to: Sample.request(.request, requested: ours, server: Sample.serverID)))
        #expect(reply.message.messageType == .ack)
        #expect(reply.message.yiaddr == ours)
        #expect(reply.message.options[.subnetMask] == [255, 255, 255, 0])
        #expect(reply.destination == .unicast(ip: ours, mac: Sample.clientMAC))
    }

    @Test func selectingRequestForAnotherAddressIsNaked() throws {
        let reply = try #require(logic.reply(to: Sample.request(.request, requested: ip("10.42.0.99"), server: Sample.serverID)))
        #expect(reply.message.messageType == .nak)
        #expect(reply.message.yiaddr == IPv4Address(0))
        #expect(reply.message.serverIdentifier == Sample.serverID)
        #expect(reply.message.options[.subnetMask] == nil && reply.message.options[.leaseTime] == nil)
        #expect(reply.destination == .broadcast)
    }

    @Test func selectingAnotherServerGetsSilence() {
        let request = Sample.request(.request, requested: ours, server: ip("169.254.9.9"))
        #expect(logic.reply(to: request) == nil)
        #expect(logic.decision(for: request) == .ignore(.otherServerSelected(ip("169.254.9.9"))))
    }

    @Test func initRebootAcksOurAddressAndNaksOthers() throws {
        #expect(logic.reply(to: Sample.request(.request, requested: ours))?.message.messageType == .ack)
        let nak = try #require(logic.reply(to: Sample.request(.request, requested: ip("192.168.1.5"))))
        #expect(nak.message.messageType == .nak)
        #expect(nak.destination == .broadcast)
    }

    @Test func renewingIsAckedByUnicastToCiaddr() throws {
        let reply = try #require(logic.reply(to: Sample.request(.request, ciaddr: ours)))
        #expect(reply.message.messageType == .ack)
        #expect(reply.message.ciaddr == ours)
        #expect(reply.message.yiaddr == ours)
        #expect(reply.destination == .unicast(ip: ours, mac: Sample.clientMAC))
    }

    @Test func rebindingWithBroadcastBitStillGoesToCiaddr() throws {
        let reply = try #require(logic.reply(to: Sample.request(.request, ciaddr: ours, broadcast: true)))
        #expect(reply.message.messageType == .ack)
        #expect(reply.destination == .unicast(ip: ours, mac: Sample.clientMAC))
    }

    @Test func renewingAWrongAddressIsNaked() {
        #expect(logic.reply(to: Sample.request(.request, ciaddr: ip("10.42.0.8")))?.message.messageType == .nak)
    }

    @Test func requestWithoutAnyAddressIsIgnored() {
        #expect(logic.decision(for: Sample.request(.request)) == .ignore(.requestWithoutAddress))
    }

    // MARK: INFORM, RELEASE, DECLINE

    @Test func informGetsConfigurationWithoutLease() throws {
        let reply = try #require(logic.reply(to: Sample.request(.inform, ciaddr: ours)))
        #expect(reply.message.messageType == .ack)
        #expect(reply.message.yiaddr == IPv4Address(0))
        #expect(reply.message.options[.leaseTime] == nil)
        #expect(reply.message.options[.renewalTime] == nil && reply.message.options[.rebindingTime] == nil)
        #expect(reply.message.options[.domainNameServer] != nil)
        #expect(reply.destination == .unicast(ip: ours, mac: Sample.clientMAC))
    }

    @Test func releaseAndDeclineGetNoReply() {
        #expect(logic.decision(for: Sample.request(.release, ciaddr: ours)) == .ignore(.released))
        let decline = logic.decision(for: Sample.request(.decline, requested: ours, server: Sample.serverID))
        #expect(decline == .ignore(.declined(ours)))
        if case .ignore(let reason) = decline { #expect(reason.isAddressConflict) }
    }

    // MARK: Who gets answered

    @Test(arguments: DHCPMessageType.allCases)
    func otherClientsGetNothing(_ type: DHCPMessageType) {
        let request = Sample.request(type, from: Sample.otherMAC, ciaddr: ours, requested: ours, server: Sample.serverID)
        #expect(logic.reply(to: request) == nil)
        #expect(logic.decision(for: request) == .ignore(.otherClient(Sample.otherMAC)))
    }

    @Test(arguments: [DHCPMessageType.offer, .ack, .nak])
    func serverMessagesGetNothing(_ type: DHCPMessageType) {
        #expect(logic.decision(for: Sample.request(type)) == .ignore(.unexpectedType(type.rawValue)))
    }

    @Test func bootRepliesBootpAndNonEthernetAreIgnored() {
        var reply = Sample.request(.discover)
        reply.op = .reply
        #expect(logic.decision(for: reply) == .ignore(.notARequest))
        #expect(logic.decision(for: Sample.request(nil)) == .ignore(.noMessageType))
        var tokenRing = Sample.request(.discover)
        tokenRing.htype = 6
        #expect(logic.decision(for: tokenRing) == .ignore(.notEthernet(htype: 6, hlen: 6)))
    }

    // MARK: Destinations (RFC 2131 section 4.1)

    @Test func offerIsUnicastToChaddrUnlessBroadcastRequested() {
        #expect(logic.reply(to: Sample.request(.discover))?.destination == .unicast(ip: ours, mac: Sample.clientMAC))
        #expect(logic.reply(to: Sample.request(.discover, broadcast: true))?.destination == .broadcast)
        #expect(logic.reply(to: Sample.request(.discover, broadcast: true))?.message.isBroadcast == true)
    }

    /// Issue 10 item 13: the VM is on the link, so a relayed request is never its own.
    @Test func relayedRequestsAreNeverAnswered() {
        let relay = ip("10.42.0.254")
        for request in [Sample.request(.discover, giaddr: relay),
                        Sample.request(.request, giaddr: relay, requested: ours, server: Sample.serverID),
                        Sample.request(.request, giaddr: relay, requested: ip("1.2.3.4")),
                        Sample.request(.inform, ciaddr: ours, giaddr: relay)] {
            #expect(logic.decision(for: request) == .ignore(.relayed(relay)))
        }
    }

    @Test func informWithoutCiaddrIsBroadcast() {
        #expect(logic.reply(to: Sample.request(.inform))?.destination == .broadcast)
    }

    // MARK: The whole per-packet path

    @Test func processBuildsAFrameTheClientCanRead() throws {
        let serverMAC = mac("02:00:00:00:00:01")
        let outcome = logic.process(packet: Sample.request(.discover).encoded(), serverMAC: serverMAC)
        guard case .reply(let request, let reply, .frame(let frame)) = outcome else {
            Issue.record("expected a frame, got \(outcome)")
            return
        }
        #expect(request.messageType == .discover)
        let parsed = try #require(UDPFrame.parse(frame))
        #expect(parsed.sourceMAC == serverMAC && parsed.destinationMAC == Sample.clientMAC)
        #expect(parsed.sourceIP == Sample.serverID && parsed.destinationIP == ours)
        #expect(parsed.sourcePort == 67 && parsed.destinationPort == 68)
        #expect(parsed.ipChecksumValid && parsed.udpChecksumValid)
        #expect(try DHCPMessage(decoding: parsed.payload) == reply.message)
    }

    @Test func processBroadcastsNaksAndIgnoresRelayedRequests() throws {
        let serverMAC = mac("02:00:00:00:00:01")
        let nak = logic.process(packet: Sample.request(.request, requested: ip("1.2.3.4")).encoded(), serverMAC: serverMAC)
        guard case .reply(_, _, .frame(let frame)) = nak else {
            Issue.record("expected a frame, got \(nak)")
            return
        }
        let parsed = try #require(UDPFrame.parse(frame))
        #expect(parsed.destinationMAC == mac("ff:ff:ff:ff:ff:ff") && parsed.destinationIP == ip("255.255.255.255"))

        let relayed = Sample.request(.discover, giaddr: ip("10.1.1.1"))
        #expect(logic.process(packet: relayed.encoded(), serverMAC: serverMAC) == .ignored(relayed, .relayed(ip("10.1.1.1"))))
    }

    /// Issue 10 item 13: only frames whose Ethernet source is the VM's MAC are answered; a host on
    /// the network putting the VM's MAC into `chaddr` gets nothing.
    @Test func framesFromAnotherSourceAreRejected() throws {
        let serverMAC = mac("02:00:00:00:00:01")
        let discover = Sample.request(.discover).encoded()
        func frame(from source: MACAddress, port: UInt16 = 67) -> [UInt8] {
            UDPFrame.build(sourceMAC: source, destinationMAC: mac("ff:ff:ff:ff:ff:ff"),
                           sourceIP: IPv4Address(0), destinationIP: ip("255.255.255.255"),
                           sourcePort: 68, destinationPort: port, payload: discover)
        }
        #expect(logic.process(frame: frame(from: Sample.otherMAC), serverMAC: serverMAC) == .rejected(.foreignSource(Sample.otherMAC)))
        #expect(logic.process(frame: frame(from: Sample.clientMAC, port: 53), serverMAC: serverMAC) == .rejected(.notDHCPRequest))
        #expect(logic.process(frame: Array(frame(from: Sample.clientMAC).prefix(30)), serverMAC: serverMAC) == .rejected(.notDHCPRequest))
        let accepted = logic.process(frame: frame(from: Sample.clientMAC), serverMAC: serverMAC)
        #expect(accepted == .packet(logic.process(packet: discover, serverMAC: serverMAC)))
        guard case .packet(.reply(_, let reply, _)) = accepted else {
            Issue.record("expected an OFFER, got \(accepted)")
            return
        }
        #expect(reply.message.messageType == .offer)
    }

    @Test func processReportsUndecodableAndIgnoredPackets() {
        let serverMAC = mac("02:00:00:00:00:01")
        #expect(logic.process(packet: [1, 2, 3], serverMAC: serverMAC) == .undecodable(.tooShort(length: 3)))
        let other = Sample.request(.discover, from: Sample.otherMAC)
        #expect(logic.process(packet: other.encoded(), serverMAC: serverMAC) == .ignored(other, .otherClient(Sample.otherMAC)))
    }
}
