import NetworkTypes

/// Where a reply goes (RFC 2131 section 4.1).
package enum DHCPReplyDestination: Sendable, Equatable, CustomStringConvertible {
    /// To 255.255.255.255:68 and Ethernet broadcast: NAKs, and clients that set the broadcast bit.
    case broadcast
    /// To port 68 of a client: `ip` is its `ciaddr` (renewing, INFORM) or the offered `yiaddr`,
    /// delivered to `mac` directly since the client may not answer ARP yet.
    case unicast(ip: IPv4Address, mac: MACAddress)

    package var description: String {
        switch self {
        case .broadcast: "broadcast"
        case .unicast(let ip, let mac): "unicast \(ip) (\(mac))"
        }
    }
}

/// A reply message and where to send it.
package struct DHCPReply: Sendable, Equatable {
    package var message: DHCPMessage
    package var destination: DHCPReplyDestination

    package init(message: DHCPMessage, destination: DHCPReplyDestination) {
        self.message = message
        self.destination = destination
    }
}

/// Why a request got no reply. ``isAddressConflict`` marks the one to log loudly.
package enum DHCPIgnoreReason: Sendable, Equatable, CustomStringConvertible {
    /// A BOOTREPLY (another server's answer) reached us.
    case notARequest
    /// The hardware type or length is not Ethernet's.
    case notEthernet(htype: UInt8, hlen: UInt8)
    /// The client is not the one the lease is for.
    case otherClient(MACAddress)
    /// `giaddr` is set: the request came through a relay agent. The VM is on the link itself, so a
    /// relayed request is never its own, and answering it would send the lease off the link.
    case relayed(IPv4Address)
    /// No option 53: plain BOOTP is not served.
    case noMessageType
    /// A message type only servers send (OFFER, ACK, NAK) or an unknown one.
    case unexpectedType(UInt8)
    /// A SELECTING REQUEST for another server's offer (RFC 2131 section 4.3.2: stay silent).
    case otherServerSelected(IPv4Address)
    /// A REQUEST carrying neither a requested address nor `ciaddr`.
    case requestWithoutAddress
    /// The client gave its address back.
    case released
    /// The client found the leased address already in use on the link.
    case declined(IPv4Address?)

    /// True for DECLINE: someone else answers ARP for the leased address.
    package var isAddressConflict: Bool {
        if case .declined = self { return true }
        return false
    }

    package var description: String {
        switch self {
        case .notARequest: "not a BOOTREQUEST"
        case .notEthernet(let htype, let hlen): "hardware type \(htype) length \(hlen) is not Ethernet"
        case .otherClient(let mac): "client \(mac) is not the leased client"
        case .relayed(let agent): "relayed by \(agent) (giaddr set): relays are not served"
        case .noMessageType: "BOOTP request without DHCP message type"
        case .unexpectedType(let type): "message type \(type) is not a client message"
        case .otherServerSelected(let server): "client selected server \(server)"
        case .requestWithoutAddress: "DHCPREQUEST with neither requested address nor ciaddr"
        case .released: "client released its lease"
        case .declined(let address):
            "client DECLINED \(address.map { "\($0)" } ?? "the address"): another host on the link uses it (address conflict)"
        }
    }
}

/// The server's decision for one incoming message.
package enum DHCPDecision: Sendable, Equatable {
    case reply(DHCPReply)
    case ignore(DHCPIgnoreReason)
}

/// The pure DHCP server state machine for a single client and a single, fixed lease
/// (RFC 2131 section 4.3). No I/O and no state: the same request always gets the same answer,
/// which is what lets a restarted launcher keep serving its VM without a lease file.
package struct DHCPResponderLogic: Sendable {
    package let lease: DHCPLease
    /// The options every OFFER/ACK carries after 53 and 54, encoded once.
    private let configurationOptions: [DHCPOption]
    private let leaseTimeOptions: [DHCPOption]

    package init(lease: DHCPLease) {
        self.lease = lease
        var config: [DHCPOption] = [DHCPOption(.subnetMask, DHCPOptionValue.address(lease.address.netmask))]
        if lease.address.prefixLength <= 30 {
            config.append(DHCPOption(.broadcastAddress, DHCPOptionValue.address(lease.address.broadcast)))
        }
        if let router = lease.router { config.append(DHCPOption(.router, DHCPOptionValue.address(router))) }
        if !lease.dnsServers.isEmpty {
            config.append(DHCPOption(.domainNameServer, DHCPOptionValue.addresses(lease.dnsServers)))
        }
        if let hostname = lease.hostname { config.append(DHCPOption(.hostName, DHCPOptionValue.text(hostname))) }
        if let domain = lease.domainName { config.append(DHCPOption(.domainName, DHCPOptionValue.text(domain))) }
        if let mtu = lease.mtu, let value = UInt16(exactly: mtu) {
            config.append(DHCPOption(.interfaceMTU, DHCPOptionValue.uint16(value)))
        }
        let search = DomainNameEncoding.encode(lease.searchDomains)
        if !search.isEmpty { config.append(DHCPOption(.domainSearch, search)) }
        let routes = lease.classlessRoutes
        if !routes.isEmpty { config.append(DHCPOption(.classlessStaticRoute, ClasslessRouteEncoding.encode(routes))) }
        configurationOptions = config

        var times = [DHCPOption(.leaseTime, DHCPOptionValue.uint32(lease.leaseSeconds))]
        if lease.leaseSeconds != DHCPLease.infinite {
            // RFC 2131 section 4.4.5 defaults: T1 = 0.5, T2 = 0.875 of the lease.
            let seconds = UInt64(lease.leaseSeconds)
            times.append(DHCPOption(.renewalTime, DHCPOptionValue.uint32(UInt32(seconds / 2))))
            times.append(DHCPOption(.rebindingTime, DHCPOptionValue.uint32(UInt32(seconds * 7 / 8))))
        }
        leaseTimeOptions = times
    }

    /// The reply to `request`, or nil when the server must stay silent.
    package func reply(to request: DHCPMessage) -> DHCPReply? {
        if case .reply(let reply) = decision(for: request) { return reply }
        return nil
    }

    /// The reply to `request`, or the reason for silence (for logging).
    package func decision(for request: DHCPMessage) -> DHCPDecision {
        guard request.op == .request else { return .ignore(.notARequest) }
        guard let mac = request.clientMAC else { return .ignore(.notEthernet(htype: request.htype, hlen: request.hlen)) }
        guard mac == lease.clientMAC else { return .ignore(.otherClient(mac)) }
        guard request.giaddr.isUnspecified else { return .ignore(.relayed(request.giaddr)) }
        guard let rawType = request.options[.messageType]?.first, request.options[.messageType]?.count == 1 else {
            return .ignore(.noMessageType)
        }
        guard let type = DHCPMessageType(rawValue: rawType) else { return .ignore(.unexpectedType(rawType)) }

        switch type {
        case .discover:
            return .reply(answer(request, type: .offer))
        case .request:
            return decideRequest(request)
        case .inform:
            return .reply(answer(request, type: .ack, informing: true))
        case .release:
            return .ignore(.released)
        case .decline:
            return .ignore(.declined(request.requestedAddress))
        case .offer, .ack, .nak:
            return .ignore(.unexpectedType(rawType))
        }
    }

    /// RFC 2131 section 4.3.2: tell SELECTING, INIT-REBOOT and RENEWING/REBINDING apart by
    /// option 54, option 50 and `ciaddr`, and ACK only our one address.
    private func decideRequest(_ request: DHCPMessage) -> DHCPDecision {
        let ours = lease.address.address
        if let server = request.serverIdentifier {
            // SELECTING: the client answers an OFFER; silence when it picked someone else.
            guard server == lease.serverIdentifier else { return .ignore(.otherServerSelected(server)) }
            let wanted = request.requestedAddress ?? (request.ciaddr.isUnspecified ? nil : request.ciaddr)
            guard let wanted else { return .ignore(.requestWithoutAddress) }
            return .reply(wanted == ours ? answer(request, type: .ack) : nak(request, reason: "requested address \(wanted) is not offered"))
        }
        if let wanted = request.requestedAddress {
            // INIT-REBOOT: the client checks a remembered address.
            return .reply(wanted == ours ? answer(request, type: .ack) : nak(request, reason: "address \(wanted) is not yours"))
        }
        if !request.ciaddr.isUnspecified {
            // RENEWING (unicast) or REBINDING (broadcast).
            return .reply(request.ciaddr == ours ? answer(request, type: .ack) : nak(request, reason: "address \(request.ciaddr) is not yours"))
        }
        return .ignore(.requestWithoutAddress)
    }

    /// An OFFER or ACK carrying the lease; for INFORM no address and no lease times (RFC 2131 section 4.3.5).
    private func answer(_ request: DHCPMessage, type: DHCPMessageType, informing: Bool = false) -> DHCPReply {
        var options: DHCPOptions = [
            DHCPOption(.messageType, [type.rawValue]),
            DHCPOption(.serverIdentifier, DHCPOptionValue.address(lease.serverIdentifier)),
        ]
        if !informing { for option in leaseTimeOptions { options.append(option.code, option.data) } }
        for option in configurationOptions { options.append(option.code, option.data) }
        if let clientID = request.options[.clientIdentifier] { options.append(.clientIdentifier, clientID) }

        let message = DHCPMessage(
            op: .reply, htype: request.htype, hlen: request.hlen, xid: request.xid, flags: request.flags,
            ciaddr: type == .offer ? IPv4Address(0) : request.ciaddr,
            yiaddr: informing ? IPv4Address(0) : lease.address.address,
            chaddr: request.chaddr, options: options)
        return DHCPReply(message: message, destination: destination(for: request, reply: message))
    }

    /// A NAK: no address, no configuration, always broadcast (RFC 2131 table 3 and section 4.1).
    private func nak(_ request: DHCPMessage, reason: String) -> DHCPReply {
        var options: DHCPOptions = [
            DHCPOption(.messageType, [DHCPMessageType.nak.rawValue]),
            DHCPOption(.serverIdentifier, DHCPOptionValue.address(lease.serverIdentifier)),
            DHCPOption(.message, DHCPOptionValue.text(reason)),
        ]
        if let clientID = request.options[.clientIdentifier] { options.append(.clientIdentifier, clientID) }
        let message = DHCPMessage(
            op: .reply, htype: request.htype, hlen: request.hlen, xid: request.xid, flags: request.flags,
            chaddr: request.chaddr, options: options)
        return DHCPReply(message: message, destination: destination(for: request, reply: message))
    }

    /// RFC 2131 section 4.1 without relays (those are ignored): NAKs broadcast; `ciaddr` if set;
    /// broadcast when the client asked for it; otherwise unicast to `chaddr` and `yiaddr`.
    func destination(for request: DHCPMessage, reply: DHCPMessage) -> DHCPReplyDestination {
        if reply.messageType == .nak { return .broadcast }
        let mac = request.clientMAC ?? lease.clientMAC
        if !request.ciaddr.isUnspecified { return .unicast(ip: request.ciaddr, mac: mac) }
        if request.isBroadcast || reply.yiaddr.isUnspecified { return .broadcast }
        return .unicast(ip: reply.yiaddr, mac: mac)
    }
}
