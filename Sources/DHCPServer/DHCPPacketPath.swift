import NetworkTypes

/// How one reply leaves the server.
public enum DHCPTransmission: Sendable, Equatable {
    /// A complete Ethernet frame for the packet socket: reaches a client without an address
    /// (or an address the server has no route to) with neither ARP nor routing.
    case frame([UInt8])
    /// A UDP payload for the port-67 socket, to a relay agent.
    case datagram([UInt8], to: IPv4Address, port: UInt16)
}

/// What the server does with one received UDP payload.
public enum DHCPPacketOutcome: Sendable, Equatable {
    case undecodable(DHCPDecodingError)
    case ignored(DHCPMessage, DHCPIgnoreReason)
    case reply(request: DHCPMessage, reply: DHCPReply, transmission: DHCPTransmission)
}

extension DHCPResponderLogic {
    /// The server's whole per-packet work, pure: decode, decide, encode, frame. ``DHCPServer``
    /// calls exactly this for every datagram, so a benchmark timing it measures the real path.
    public func process(packet bytes: some Collection<UInt8>, serverMAC: MACAddress) -> DHCPPacketOutcome {
        let request: DHCPMessage
        do {
            request = try DHCPMessage(decoding: bytes)
        } catch {
            return .undecodable(error)
        }
        switch decision(for: request) {
        case .ignore(let reason):
            return .ignored(request, reason)
        case .reply(let reply):
            return .reply(request: request, reply: reply, transmission: transmission(for: reply, serverMAC: serverMAC))
        }
    }

    /// The frame or datagram that carries `reply` to its destination, from the server identifier.
    public func transmission(for reply: DHCPReply, serverMAC: MACAddress) -> DHCPTransmission {
        let payload = reply.message.encoded()
        let ip: IPv4Address
        let mac: MACAddress
        switch reply.destination {
        case .relay(let agent):
            return .datagram(payload, to: agent, port: DHCPPorts.server)
        case .broadcast:
            ip = IPv4Address(0xFFFF_FFFF)
            mac = MACAddress([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        case .unicast(let address, let target):
            ip = address
            mac = target
        }
        return .frame(UDPFrame.build(
            sourceMAC: serverMAC, destinationMAC: mac,
            sourceIP: lease.serverIdentifier, destinationIP: ip,
            sourcePort: DHCPPorts.server, destinationPort: DHCPPorts.client,
            payload: payload))
    }
}

/// The well-known BOOTP/DHCP UDP ports.
public enum DHCPPorts {
    public static let server: UInt16 = 67
    public static let client: UInt16 = 68
}
