import IPv6Server
import NetworkTypes

func v6(_ text: String) -> IPv6Address { IPv6Address(text)! }
func mac(_ text: String) -> MACAddress { MACAddress(text)! }

/// A fixed lease and frames a VM would send, for the logic and fuzz tests.
enum Sample {
    static let vmMAC = mac("52:54:00:12:34:56")
    static let serverMAC = mac("02:00:00:00:00:01")
    static let vmLinkLocal = IPv6Address.linkLocal(eui64: vmMAC)
    static let clientDUID: [UInt8] = [0, 1, 0, 1, 0x2a, 0x2b, 0x2c, 0x2d] + vmMAC.octets
    static let lease = IPv6Lease(
        clientMAC: vmMAC, addresses: [IPv6Interface("fd00:1::5/64")!],
        dnsServers: [v6("fd00:53::53")], searchDomains: ["example.internal", "svc.example.internal"],
        router: v6("fe80::ecee:eeff:feee:eeee"), mtu: 1400)
    static let logic = IPv6ResponderLogic(lease: lease)

    static func ia(_ iaid: UInt32 = 7, addresses: [IPv6Address] = []) -> DHCPv6Option {
        DHCPv6Option(DHCPv6OptionCode.iaNA, IdentityAssociation(
            iaid: iaid, t1: 0, t2: 0,
            options: addresses.map { IAAddress(address: $0, preferredLifetime: 0, validLifetime: 0).option }).encoded)
    }

    static func message(_ type: DHCPv6MessageType, server: [UInt8]? = nil, client: [UInt8]? = clientDUID,
                        extra: [DHCPv6Option] = [ia()]) -> DHCPv6Message {
        var options: [DHCPv6Option] = []
        if let client { options.append(DHCPv6Option(DHCPv6OptionCode.clientID, client)) }
        if let server { options.append(DHCPv6Option(DHCPv6OptionCode.serverID, server)) }
        options.append(DHCPv6Option(DHCPv6OptionCode.elapsedTime, [0, 0]))
        return DHCPv6Message(type: type, transactionID: 0xABCDEF, options: options + extra)
    }

    /// The frame the VM sends: from its link-local address to ff02::1:2, port 546 → 547.
    static func frame(_ message: DHCPv6Message, from source: MACAddress = vmMAC) -> [UInt8] {
        IPv6Frame.build(sourceMAC: source, destinationMAC: IPv6Address.allDHCPServersAndRelays.multicastMAC,
                        source: .linkLocal(eui64: source), destination: .allDHCPServersAndRelays,
                        nextHeader: IPv6Frame.nextHeaderUDP, hopLimit: 1,
                        upperLayer: IPv6Frame.udp(sourcePort: 546, destinationPort: 547, payload: message.encoded()))
    }

    /// A Router Solicitation with a source link-layer address option.
    static func solicitation(from source: MACAddress = vmMAC, hopLimit: UInt8 = 255, sourceAddress: IPv6Address? = nil,
                             linkLayerOption: Bool = true) -> [UInt8] {
        let body: [UInt8] = [133, 0, 0, 0, 0, 0, 0, 0] + (linkLayerOption ? [1, 1] + source.octets : [])
        return IPv6Frame.build(sourceMAC: source, destinationMAC: IPv6Address.allRouters.multicastMAC,
                               source: sourceAddress ?? .linkLocal(eui64: source), destination: .allRouters,
                               nextHeader: IPv6Frame.nextHeaderICMPv6, hopLimit: hopLimit, upperLayer: body)
    }
}
