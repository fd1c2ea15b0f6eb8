import NetworkTypes

/// Why a frame from the VM's side got no answer.
package enum IPv6IgnoreReason: Sendable, Equatable, CustomStringConvertible {
    /// The Ethernet source is not the VM's MAC (the network side, or another host).
    case otherClient(MACAddress)
    /// The UDP or ICMPv6 checksum is wrong.
    case badChecksum
    case undecodable(DHCPv6DecodingError)
    case invalidSolicitation(RouterSolicitation.Invalid)
    /// A message type only servers send, or an unknown one.
    case unexpectedType(UInt8)
    case noClientID
    /// A SOLICIT, REBIND or CONFIRM carrying a Server Identifier (RFC 8415 section 16: discard).
    case unexpectedServerID(DHCPv6MessageType)
    /// A REQUEST, RENEW, RELEASE or DECLINE without a Server Identifier.
    case missingServerID(DHCPv6MessageType)
    /// Addressed to another server's DUID.
    case otherServer
    /// A CONFIRM with no address to confirm (RFC 8415 section 18.3.3: no reply).
    case nothingToConfirm

    package var description: String {
        switch self {
        case .otherClient(let mac): "frame from \(mac), not the VM"
        case .badChecksum: "checksum does not verify"
        case .undecodable(let error): "undecodable DHCPv6 message: \(error)"
        case .invalidSolicitation(let invalid): "\(invalid)"
        case .unexpectedType(let type): "DHCPv6 message type \(type) is not a client message"
        case .noClientID: "DHCPv6 message without Client Identifier"
        case .unexpectedServerID(let type): "\(type) with a Server Identifier"
        case .missingServerID(let type): "\(type) without a Server Identifier"
        case .otherServer: "addressed to another DHCPv6 server"
        case .nothingToConfirm: "CONFIRM without addresses"
        }
    }
}

/// The DHCPv6 server's decision for one message from the VM.
package enum DHCPv6Decision: Sendable, Equatable {
    case reply(DHCPv6Message)
    case ignore(IPv6IgnoreReason)
}

/// What the responder does with one received frame.
package enum IPv6PacketOutcome: Sendable, Equatable {
    /// Not DHCPv6 to the server port and not a Router Solicitation: not ours to look at.
    case notForUs
    case ignored(IPv6IgnoreReason)
    /// `summary` names the request and the answer for the log; `frame` goes out as is.
    case reply(summary: String, frame: [UInt8])
}

/// The pure IPv6 responder for one VM: Router Advertisements and a DHCPv6 server (RFC 4861,
/// RFC 8415) for a single client and a single, fixed ``IPv6Lease``. No I/O and no state: the
/// same frame always gets the same answer. ``IPv6Server`` calls ``process(frame:serverMAC:)``
/// for every frame and sends ``unsolicitedAdvertisement(serverMAC:)`` on a timer.
package struct IPv6ResponderLogic: Sendable {
    package static let serverPort: UInt16 = 547
    package static let clientPort: UInt16 = 546

    package let lease: IPv6Lease
    /// Options every configuration answer carries (23, 24), encoded once.
    private let configurationOptions: [DHCPv6Option]
    private let advertisement: [UInt8]

    package init(lease: IPv6Lease) {
        self.lease = lease
        var options: [DHCPv6Option] = []
        if !lease.dnsServers.isEmpty {
            options.append(DHCPv6Option(DHCPv6OptionCode.dnsServers, lease.dnsServers.flatMap(\.octets)))
        }
        let domains = DomainListEncoding.encode(lease.searchDomains)
        if !domains.isEmpty { options.append(DHCPv6Option(DHCPv6OptionCode.domainList, domains)) }
        configurationOptions = options
        // One prefix per distinct on-link network; a /128 (Calico) has no on-link neighbours.
        var prefixes: [IPv6Interface] = []
        for address in lease.addresses where address.prefixLength < 128 {
            let prefix = IPv6Interface(address: address.network, prefixLength: address.prefixLength)
            if !prefixes.contains(prefix) { prefixes.append(prefix) }
        }
        advertisement = RouterAdvertisement(
            routerLifetime: lease.router == nil ? 0 : lease.routerLifetime,
            prefixes: prefixes,
            mtu: lease.mtu.map { UInt32($0) }).encoded
    }

    /// The server's own link-local address: the source of DHCPv6 replies (and of advertisements
    /// when the lease names no router).
    package static func serverAddress(serverMAC: MACAddress) -> IPv6Address { .linkLocal(eui64: serverMAC) }

    /// The whole per-frame path, pure: parse, filter, decode, decide, encode, frame.
    /// `checksumUnverifiable`: the kernel reports the checksum as not yet filled in (a local sender
    /// with checksum offload, e.g. a veth peer); only then is a wrong checksum accepted.
    package func process(frame bytes: some Collection<UInt8>, serverMAC: MACAddress,
                        checksumUnverifiable: Bool = false) -> IPv6PacketOutcome {
        guard let frame = IPv6Frame.parse(bytes) else { return .notForUs }
        let isDHCP = frame.udp.map { $0.destinationPort == Self.serverPort } ?? false
        let isSolicitation = frame.nextHeader == IPv6Frame.nextHeaderICMPv6 && frame.upperLayer.first == ICMPv6Type.routerSolicitation
        guard isDHCP || isSolicitation else { return .notForUs }
        guard frame.sourceMAC == lease.clientMAC else { return .ignored(.otherClient(frame.sourceMAC)) }
        guard frame.checksumValid || checksumUnverifiable else { return .ignored(.badChecksum) }

        if isSolicitation {
            do throws(RouterSolicitation.Invalid) {
                _ = try RouterSolicitation(decoding: frame.upperLayer, hopLimit: frame.hopLimit, source: frame.source)
            } catch {
                return .ignored(.invalidSolicitation(error))
            }
            let destination = frame.source.isUnspecified ? IPv6Address.allNodes : frame.source
            return .reply(summary: "ROUTER-SOLICITATION from \(frame.source) -> ROUTER-ADVERTISEMENT",
                          frame: advertisementFrame(to: destination, serverMAC: serverMAC))
        }

        guard let udp = frame.udp else { return .notForUs }
        let request: DHCPv6Message
        do {
            request = try DHCPv6Message(decoding: udp.payload)
        } catch {
            return .ignored(.undecodable(error))
        }
        switch decision(for: request) {
        case .ignore(let reason):
            return .ignored(reason)
        case .reply(let reply):
            let payload = reply.encoded()
            let datagram = IPv6Frame.udp(sourcePort: Self.serverPort, destinationPort: udp.sourcePort, payload: payload)
            let out = IPv6Frame.build(
                sourceMAC: serverMAC, destinationMAC: lease.clientMAC,
                source: Self.serverAddress(serverMAC: serverMAC), destination: frame.source,
                nextHeader: IPv6Frame.nextHeaderUDP, hopLimit: 255, upperLayer: datagram)
            let given = ((try? reply.identityAssociations()) ?? []).flatMap { $0.addresses }.filter { $0.validLifetime > 0 }.map { "\($0.address)" }
            let summary = "\(request.messageType.map { "\($0)" } ?? "?") -> \(reply.messageType.map { "\($0)" } ?? "?")"
                + (given.isEmpty ? "" : " \(given.joined(separator: ", "))")
            return .reply(summary: summary, frame: out)
        }
    }

    /// A periodic advertisement: IPv6 destination all-nodes, Ethernet destination the VM's MAC
    /// only, so no other host on the container's network ever sees it.
    package func unsolicitedAdvertisement(serverMAC: MACAddress) -> [UInt8] {
        advertisementFrame(to: .allNodes, serverMAC: serverMAC)
    }

    private func advertisementFrame(to destination: IPv6Address, serverMAC: MACAddress) -> [UInt8] {
        IPv6Frame.build(
            sourceMAC: serverMAC, destinationMAC: lease.clientMAC,
            source: lease.router ?? Self.serverAddress(serverMAC: serverMAC), destination: destination,
            nextHeader: IPv6Frame.nextHeaderICMPv6, hopLimit: 255, upperLayer: advertisement)
    }

    /// The reply to one DHCPv6 message from the VM, or the reason for silence (RFC 8415 sections 16 and 18.3).
    package func decision(for request: DHCPv6Message) -> DHCPv6Decision {
        guard let type = request.messageType else { return .ignore(.unexpectedType(request.type)) }
        let serverID = request.serverID
        if let serverID, serverID != lease.serverDUID, type != .solicit, type != .rebind, type != .confirm {
            return .ignore(.otherServer)
        }
        let associations: [IdentityAssociation]
        do {
            associations = try request.identityAssociations()
        } catch {
            return .ignore(.undecodable(error))
        }
        switch type {
        case .solicit, .rebind, .confirm:
            guard serverID == nil else { return .ignore(.unexpectedServerID(type)) }
        case .request, .renew, .release, .decline:
            guard serverID != nil else { return .ignore(.missingServerID(type)) }
        case .informationRequest:
            break
        default:
            return .ignore(.unexpectedType(request.type))
        }
        guard let clientID = request.clientID else {
            // RFC 8415 section 16.12: an Information-request may omit it.
            guard type == .informationRequest else { return .ignore(.noClientID) }
            return .reply(reply(.reply, to: request, clientID: nil, extra: configurationOptions))
        }

        switch type {
        case .solicit:
            let rapid = lease.rapidCommit && request.hasRapidCommit
            var extra = grants(for: request, associations: associations)
            if rapid {
                extra.append(DHCPv6Option(DHCPv6OptionCode.rapidCommit, []))
            } else {
                extra.append(DHCPv6Option(DHCPv6OptionCode.preference, [255]))  // no need to wait for other servers
            }
            return .reply(reply(rapid ? .reply : .advertise, to: request, clientID: clientID, extra: extra + configurationOptions))
        case .request, .renew, .rebind:
            return .reply(reply(.reply, to: request, clientID: clientID,
                                  extra: grants(for: request, associations: associations) + configurationOptions))
        case .confirm:
            let addresses = associations.flatMap(\.addresses).map(\.address)
            guard !addresses.isEmpty else { return .ignore(.nothingToConfirm) }
            let onLink = addresses.allSatisfy { address in lease.addresses.contains { $0.contains(address) } }
            let status = onLink ? DHCPv6StatusOption.option(.success, "all addresses are on link")
                : DHCPv6StatusOption.option(.notOnLink, "not on this link")
            return .reply(reply(.reply, to: request, clientID: clientID, extra: [status]))
        case .release:
            return .reply(reply(.reply, to: request, clientID: clientID,
                                  extra: [DHCPv6StatusOption.option(.success, "released")]))
        case .decline:
            return .reply(reply(.reply, to: request, clientID: clientID,
                                  extra: [DHCPv6StatusOption.option(.success, "declined")]))
        default:  // informationRequest
            return .reply(reply(.reply, to: request, clientID: clientID, extra: configurationOptions))
        }
    }

    /// For DECLINE: the addresses the VM found in use by someone else (for a loud log line).
    package static func declinedAddresses(in request: DHCPv6Message) -> [IPv6Address] {
        guard request.messageType == .decline else { return [] }
        return ((try? request.identityAssociations()) ?? []).flatMap(\.addresses).map(\.address)
    }

    private func reply(_ type: DHCPv6MessageType, to request: DHCPv6Message, clientID: [UInt8]?, extra: [DHCPv6Option]) -> DHCPv6Message {
        var options = [DHCPv6Option(DHCPv6OptionCode.serverID, lease.serverDUID)]
        if let clientID { options.append(DHCPv6Option(DHCPv6OptionCode.clientID, clientID)) }
        return DHCPv6Message(type: type, transactionID: request.transactionID, options: options + extra)
    }

    /// One answer per identity association: the first IA_NA gets every address of the lease (and
    /// addresses the client names that are not ours with lifetimes 0); other IA_NAs, IA_TAs and
    /// IA_PDs get "none available". A request without any IA_NA gets a top-level NoAddrsAvail.
    private func grants(for request: DHCPv6Message, associations: [IdentityAssociation]) -> [DHCPv6Option] {
        var options: [DHCPv6Option] = []
        for (index, association) in associations.enumerated() {
            guard index == 0 else {
                options.append(DHCPv6Option(DHCPv6OptionCode.iaNA, IdentityAssociation(
                    iaid: association.iaid, t1: 0, t2: 0,
                    options: [DHCPv6StatusOption.option(.noAddressesAvailable, "one IA_NA per VM")]).encoded))
                continue
            }
            var inner = lease.addresses.map {
                IAAddress(address: $0.address, preferredLifetime: lease.preferredLifetime, validLifetime: lease.validLifetime).option
            }
            for stale in association.addresses.map(\.address) where !lease.addresses.contains(where: { $0.address == stale }) {
                inner.append(IAAddress(address: stale, preferredLifetime: 0, validLifetime: 0).option)
            }
            options.append(DHCPv6Option(DHCPv6OptionCode.iaNA, IdentityAssociation(
                iaid: association.iaid, t1: renewal(fraction: 2), t2: renewal(fraction: 1), options: inner).encoded))
        }
        if associations.isEmpty, request.messageType == .solicit || request.messageType == .request {
            options.append(DHCPv6StatusOption.option(.noAddressesAvailable, "ask for an IA_NA"))
        }
        for data in request.all(DHCPv6OptionCode.iaTA) where data.count >= 4 {
            options.append(DHCPv6Option(DHCPv6OptionCode.iaTA,
                                        Array(data.prefix(4)) + DHCPv6Option.encodeAll([DHCPv6StatusOption.option(.noAddressesAvailable, "no temporary addresses")])))
        }
        for data in request.all(DHCPv6OptionCode.iaPD) where data.count >= 4 {
            options.append(DHCPv6Option(DHCPv6OptionCode.iaPD,
                                        Array(data.prefix(4)) + [0, 0, 0, 0, 0, 0, 0, 0]
                                            + DHCPv6Option.encodeAll([DHCPv6StatusOption.option(.noPrefixAvailable, "no prefix delegation")])))
        }
        return options
    }

    /// T1 (half the preferred lifetime, `fraction` 2) and T2 (0.8 of it, `fraction` 1); infinite stays infinite.
    private func renewal(fraction: Int) -> UInt32 {
        let preferred = lease.preferredLifetime
        guard preferred != .max else { return .max }
        return fraction == 2 ? preferred / 2 : UInt32(UInt64(preferred) * 4 / 5)
    }
}
