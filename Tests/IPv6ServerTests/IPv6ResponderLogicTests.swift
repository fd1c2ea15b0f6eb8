import IPv6Server
import NetworkTypes
import Testing

@Suite struct IPv6ResponderLogicTests {
    let logic = Sample.logic
    let lease = Sample.lease

    /// Runs `request` through the whole frame path and returns the DHCPv6 reply and its frame.
    func answer(_ request: DHCPv6Message) throws -> (DHCPv6Message, IPv6Frame.Parsed) {
        guard case .reply(_, let bytes) = logic.process(frame: Sample.frame(request), serverMAC: Sample.serverMAC) else {
            Issue.record("no reply to \(request.messageType!)")
            throw CancellationError()
        }
        let frame = try #require(IPv6Frame.parse(bytes))
        let udp = try #require(frame.udp)
        #expect(frame.checksumValid)
        #expect(frame.destinationMAC == Sample.vmMAC && frame.sourceMAC == Sample.serverMAC)
        #expect(frame.destination == Sample.vmLinkLocal)
        #expect(frame.source == IPv6Address.linkLocal(eui64: Sample.serverMAC))
        #expect(udp.sourcePort == 547 && udp.destinationPort == 546)
        return (try DHCPv6Message(decoding: udp.payload), frame)
    }

    func expectFullConfiguration(_ reply: DHCPv6Message) throws {
        #expect(reply.transactionID == 0xABCDEF)
        #expect(reply.clientID == Sample.clientDUID)
        #expect(reply.serverID == lease.serverDUID)
        let ia = try #require(try reply.identityAssociations().first)
        #expect(ia.iaid == 7)
        #expect(ia.addresses == [IAAddress(address: v6("fd00:1::5"), preferredLifetime: .max, validLifetime: .max)])
        #expect(reply[DHCPv6OptionCode.dnsServers] == v6("fd00:53::53").octets)
        #expect(DomainListEncoding.decode(try #require(reply[DHCPv6OptionCode.domainList])) == ["example.internal", "svc.example.internal"])
    }

    @Test func solicitGetsAdvertiseWithAddressDNSDomainAndTopPreference() throws {
        let (reply, _) = try answer(Sample.message(.solicit))
        #expect(reply.messageType == .advertise)
        #expect(reply[DHCPv6OptionCode.preference] == [255])
        try expectFullConfiguration(reply)
    }

    @Test func rapidCommitSolicitGetsReplyAtOnce() throws {
        let (reply, _) = try answer(Sample.message(.solicit, extra: [Sample.ia(), DHCPv6Option(DHCPv6OptionCode.rapidCommit, [])]))
        #expect(reply.messageType == .reply && reply.hasRapidCommit)
        try expectFullConfiguration(reply)

        var noRapid = lease
        noRapid.rapidCommit = false
        let plain = IPv6ResponderLogic(lease: noRapid).decision(for: Sample.message(.solicit, extra: [Sample.ia(), DHCPv6Option(DHCPv6OptionCode.rapidCommit, [])]))
        guard case .reply(let advertise) = plain else { Issue.record("\(plain)"); return }
        #expect(advertise.messageType == .advertise && !advertise.hasRapidCommit)
    }

    @Test(arguments: [DHCPv6MessageType.request, .renew])
    func requestAndRenewToUsGetReply(type: DHCPv6MessageType) throws {
        let (reply, _) = try answer(Sample.message(type, server: lease.serverDUID, extra: [Sample.ia(addresses: [v6("fd00:1::5")])]))
        #expect(reply.messageType == .reply)
        try expectFullConfiguration(reply)
    }

    @Test func rebindGetsReplyAndAForeignAddressIsWithdrawn() throws {
        let (reply, _) = try answer(Sample.message(.rebind, extra: [Sample.ia(addresses: [v6("fd00:9::9")])]))
        #expect(reply.messageType == .reply)
        let ia = try #require(try reply.identityAssociations().first)
        #expect(ia.addresses.contains(IAAddress(address: v6("fd00:1::5"), preferredLifetime: .max, validLifetime: .max)))
        #expect(ia.addresses.contains(IAAddress(address: v6("fd00:9::9"), preferredLifetime: 0, validLifetime: 0)))
    }

    @Test(arguments: [DHCPv6MessageType.request, .renew, .release, .decline])
    func messagesForAnotherServerAreIgnored(type: DHCPv6MessageType) {
        #expect(logic.decision(for: Sample.message(type, server: [0, 3, 0, 1, 1, 2, 3, 4, 5, 6])) == .ignore(.otherServer))
        #expect(logic.decision(for: Sample.message(type)) == .ignore(.missingServerID(type)))
    }

    @Test(arguments: [DHCPv6MessageType.solicit, .rebind, .confirm])
    func serverIDWhereNoneBelongsIsIgnored(type: DHCPv6MessageType) {
        #expect(logic.decision(for: Sample.message(type, server: lease.serverDUID)) == .ignore(.unexpectedServerID(type)))
    }

    @Test func confirmSaysWhetherTheAddressIsOnLink() throws {
        let (onLink, _) = try answer(Sample.message(.confirm, extra: [Sample.ia(addresses: [v6("fd00:1::77")])]))
        #expect(onLink.messageType == .reply && onLink.options.first { $0.code == DHCPv6OptionCode.statusCode }.flatMap { DHCPv6StatusOption.decode($0.data) } == .success)
        let (offLink, _) = try answer(Sample.message(.confirm, extra: [Sample.ia(addresses: [v6("fd00:2::5")])]))
        #expect(offLink.options.first { $0.code == DHCPv6OptionCode.statusCode }.flatMap { DHCPv6StatusOption.decode($0.data) } == .notOnLink)
        #expect(logic.decision(for: Sample.message(.confirm)) == .ignore(.nothingToConfirm))
    }

    @Test func informationRequestGetsDNSAndDomainsButNoAddress() throws {
        let (reply, _) = try answer(Sample.message(.informationRequest, extra: []))
        #expect(reply.messageType == .reply)
        #expect(try reply.identityAssociations().isEmpty)
        #expect(reply[DHCPv6OptionCode.dnsServers] == v6("fd00:53::53").octets)
        #expect(reply[DHCPv6OptionCode.domainList] != nil)
    }

    @Test func releaseAndDeclineAreAcknowledgedAndDeclineIsReportedAsConflict() throws {
        for type in [DHCPv6MessageType.release, .decline] {
            let (reply, _) = try answer(Sample.message(type, server: lease.serverDUID, extra: [Sample.ia(addresses: [v6("fd00:1::5")])]))
            #expect(reply.messageType == .reply)
            #expect(try reply.identityAssociations().isEmpty, "no address handed out in answer to \(type)")
        }
        #expect(IPv6ResponderLogic.declinedAddresses(in: Sample.message(.decline, server: lease.serverDUID, extra: [Sample.ia(addresses: [v6("fd00:1::5")])])) == [v6("fd00:1::5")])
    }

    @Test func secondIAAndTemporaryAndPrefixDelegationGetNoneAvailable() throws {
        let ta = DHCPv6Option(DHCPv6OptionCode.iaTA, [0, 0, 0, 9])
        let pd = DHCPv6Option(DHCPv6OptionCode.iaPD, [0, 0, 0, 8] + Array(repeating: 0, count: 8))
        let (reply, _) = try answer(Sample.message(.solicit, extra: [Sample.ia(1), Sample.ia(2), ta, pd]))
        let ias = try reply.identityAssociations()
        #expect(ias.count == 2 && ias[0].addresses.count == 1 && ias[1].addresses.isEmpty && ias[1].status == .noAddressesAvailable)
        #expect(reply[DHCPv6OptionCode.iaTA] != nil && reply[DHCPv6OptionCode.iaPD] != nil)
        let (bare, _) = try answer(Sample.message(.solicit, extra: []))
        #expect(bare.options.first { $0.code == DHCPv6OptionCode.statusCode }.flatMap { DHCPv6StatusOption.decode($0.data) } == .noAddressesAvailable)
    }

    @Test func serverMessagesAndMissingClientIDAreIgnored() {
        for type in [DHCPv6MessageType.advertise, .reply, .reconfigure] {
            #expect(logic.decision(for: Sample.message(type)) == .ignore(.unexpectedType(type.rawValue)))
        }
        #expect(logic.decision(for: Sample.message(.solicit, client: nil)) == .ignore(.noClientID))
        #expect(logic.decision(for: DHCPv6Message(type: 200, transactionID: 1, options: [])) == .ignore(.unexpectedType(200)))
    }

    /// Only the VM: the same request from any other MAC (the network side, another container) is not answered.
    @Test func framesFromAnyOtherMACAreIgnored() {
        let other = mac("02:aa:bb:cc:dd:ee")
        #expect(logic.process(frame: Sample.frame(Sample.message(.solicit), from: other), serverMAC: Sample.serverMAC) == .ignored(.otherClient(other)))
        #expect(logic.process(frame: Sample.solicitation(from: other), serverMAC: Sample.serverMAC) == .ignored(.otherClient(other)))
    }

    @Test func badChecksumIsIgnoredAndOtherTrafficIsNotOurs() {
        var frame = Sample.frame(Sample.message(.solicit))
        frame[frame.count - 1] ^= 0x55
        #expect(logic.process(frame: frame, serverMAC: Sample.serverMAC) == .ignored(.badChecksum))
        let echo = IPv6Frame.build(sourceMAC: Sample.vmMAC, destinationMAC: Sample.serverMAC, source: Sample.vmLinkLocal,
                                   destination: v6("fe80::1"), nextHeader: 58, hopLimit: 64, upperLayer: [128, 0, 0, 0, 0, 1, 0, 1])
        #expect(logic.process(frame: echo, serverMAC: Sample.serverMAC) == .notForUs)
    }

    @Test func solicitationGetsAdvertisementFromTheRouterToTheVMOnly() throws {
        guard case .reply(_, let bytes) = logic.process(frame: Sample.solicitation(), serverMAC: Sample.serverMAC) else {
            Issue.record("no RA"); return
        }
        let frame = try #require(IPv6Frame.parse(bytes))
        #expect(frame.checksumValid && frame.hopLimit == 255)
        #expect(frame.destinationMAC == Sample.vmMAC, "an RA must never reach other hosts of the container's network")
        #expect(frame.source == v6("fe80::ecee:eeff:feee:eeee"))
        #expect(frame.destination == Sample.vmLinkLocal)
        let ra = try #require(RouterAdvertisement(decoding: frame.upperLayer))
        #expect(ra.managed && ra.otherConfiguration)
        #expect(ra.routerLifetime == 1800)
        #expect(ra.prefixes == [IPv6Interface("fd00:1::/64")!])
        #expect(ra.mtu == 1400)
        #expect(ra.sourceLinkLayerAddress == nil, "the router answers Neighbor Discovery for itself")
        // The raw Prefix Information flags byte: L set, A clear.
        let offset = frame.upperLayer.firstIndex(of: 3).map { $0 } ?? 0
        #expect(frame.upperLayer[offset + 3] == 0x80)
    }

    @Test func unsolicitedAdvertisementGoesToAllNodesInAFrameForTheVM() throws {
        let frame = try #require(IPv6Frame.parse(logic.unsolicitedAdvertisement(serverMAC: Sample.serverMAC)))
        #expect(frame.destination == .allNodes && frame.destinationMAC == Sample.vmMAC)
        // From :: the RA goes to all nodes too.
        guard case .reply(_, let bytes) = logic.process(frame: Sample.solicitation(sourceAddress: .unspecified, linkLayerOption: false),
                                                        serverMAC: Sample.serverMAC) else { Issue.record("no RA"); return }
        #expect(IPv6Frame.parse(bytes)?.destination == .allNodes)
    }

    @Test func withoutARouterTheAdvertisementIsNoDefaultRoute() throws {
        var noRouter = lease
        noRouter.router = nil
        let frame = try #require(IPv6Frame.parse(IPv6ResponderLogic(lease: noRouter).unsolicitedAdvertisement(serverMAC: Sample.serverMAC)))
        #expect(frame.source == IPv6Address.linkLocal(eui64: Sample.serverMAC))
        #expect(RouterAdvertisement(decoding: frame.upperLayer)?.routerLifetime == 0)
    }

    @Test func invalidSolicitationsAreIgnored() {
        #expect(logic.process(frame: Sample.solicitation(hopLimit: 64), serverMAC: Sample.serverMAC) == .ignored(.invalidSolicitation(.hopLimit(64))))
        #expect(logic.process(frame: Sample.solicitation(sourceAddress: .unspecified), serverMAC: Sample.serverMAC)
                == .ignored(.invalidSolicitation(.linkLayerAddressFromUnspecified)))
    }

    @Test func leaseValidationNamesTheProblem() {
        var bad = lease
        bad.addresses = [IPv6Interface("fe80::5/64")!]
        #expect(throws: IPv6LeaseError.notGlobal(IPv6Interface("fe80::5/64")!)) { try bad.validate() }
        bad = lease
        bad.router = v6("fd00:1::1")
        #expect(throws: IPv6LeaseError.routerNotLinkLocal(v6("fd00:1::1"))) { try bad.validate() }
        bad = lease
        bad.dnsServers = [v6("::1")]
        #expect(throws: IPv6LeaseError.nameServer(v6("::1"))) { try bad.validate() }
        bad = lease
        bad.addresses = []
        #expect(throws: IPv6LeaseError.noAddress) { try bad.validate() }
        #expect(throws: Never.self) { try lease.validate() }
    }

    /// No lease file: a second logic made from the same lease (a restarted launcher) answers byte for byte the same.
    @Test func aRestartedResponderAnswersTheSame() {
        let again = IPv6ResponderLogic(lease: Sample.lease)
        for request in [Sample.message(.solicit), Sample.message(.renew, server: IPv6Lease.defaultServerDUID(for: Sample.vmMAC))] {
            #expect(logic.process(frame: Sample.frame(request), serverMAC: Sample.serverMAC)
                    == again.process(frame: Sample.frame(request), serverMAC: Sample.serverMAC))
        }
        #expect(IPv6Lease(clientMAC: Sample.vmMAC, addresses: lease.addresses).serverDUID == lease.serverDUID)
    }
}
