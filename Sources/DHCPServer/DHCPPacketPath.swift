import NetworkTypes

/// How one reply leaves the server.
package enum DHCPTransmission: Sendable, Equatable {
    /// A complete Ethernet frame for the packet socket: reaches a client without an address
    /// (or an address the server has no route to) with neither ARP nor routing.
    case frame([UInt8])
}

/// What the server does with one received UDP payload.
package enum DHCPPacketOutcome: Sendable, Equatable {
    case undecodable(DHCPDecodingError)
    case ignored(DHCPMessage, DHCPIgnoreReason)
    case reply(request: DHCPMessage, reply: DHCPReply, transmission: DHCPTransmission)
}

/// Why a received Ethernet frame was dropped before its DHCP payload was looked at.
package enum DHCPFrameRejection: Sendable, Equatable, CustomStringConvertible {
    /// Not an Ethernet/IPv4/UDP frame to port 67, or cut short.
    case notDHCPRequest
    /// The frame's Ethernet source is not the VM's MAC: another host on the link (for example the
    /// network-side peer putting the VM's MAC into `chaddr`).
    case foreignSource(MACAddress)

    package var description: String {
        switch self {
        case .notDHCPRequest: "not an IPv4/UDP frame to port 67"
        case .foreignSource(let mac): "Ethernet source \(mac) is not the VM's MAC"
        }
    }
}

/// What the server does with one received Ethernet frame.
package enum DHCPFrameOutcome: Sendable, Equatable {
    case rejected(DHCPFrameRejection)
    case packet(DHCPPacketOutcome)
}

extension DHCPResponderLogic {
    /// The server's whole per-frame work, pure: the frame's Ethernet source must be the VM's
    /// MAC, then ``process(packet:serverMAC:)`` on its UDP payload. ``DHCPServer`` calls exactly
    /// this for every frame its packet socket receives.
    package func process(frame bytes: [UInt8], serverMAC: MACAddress) -> DHCPFrameOutcome {
        guard let parsed = UDPFrame.parse(bytes), parsed.destinationPort == DHCPPorts.server else {
            return .rejected(.notDHCPRequest)
        }
        guard parsed.sourceMAC == lease.clientMAC else { return .rejected(.foreignSource(parsed.sourceMAC)) }
        return .packet(process(packet: parsed.payload, serverMAC: serverMAC))
    }

    /// The server's per-packet work, pure: decode, decide, encode, frame. A benchmark timing it
    /// measures the real path (see ``process(frame:serverMAC:)``).
    package func process(packet bytes: some Collection<UInt8>, serverMAC: MACAddress) -> DHCPPacketOutcome {
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

    /// The frame that carries `reply` to its destination, from the server identifier.
    package func transmission(for reply: DHCPReply, serverMAC: MACAddress) -> DHCPTransmission {
        let payload = reply.message.encoded()
        let ip: IPv4Address
        let mac: MACAddress
        switch reply.destination {
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
package enum DHCPPorts {
    package static let server: UInt16 = 67
    package static let client: UInt16 = 68
}
