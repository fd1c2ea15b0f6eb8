import DHCPServer
import NetworkTypes

func ip(_ text: String) -> IPv4Address { IPv4Address(text)! }
func cidr(_ text: String) -> IPv4Interface { IPv4Interface(text)! }
func mac(_ text: String) -> MACAddress { MACAddress(text)! }

enum Sample {
    static let clientMAC = mac("52:54:00:12:34:56")
    static let otherMAC = mac("52:54:00:ab:cd:ef")
    static let serverID = ip("169.254.0.1")

    /// A typical Kubernetes pod lease: /24 with an on-link gateway, DNS and search domains.
    static let lease = DHCPLease(
        clientMAC: clientMAC,
        address: cidr("10.42.0.7/24"),
        serverIdentifier: serverID,
        router: ip("10.42.0.1"),
        staticRoutes: [DHCPStaticRoute(destination: cidr("192.168.50.0/24"), gateway: ip("10.42.0.254"))],
        dnsServers: [ip("10.43.0.10"), ip("1.1.1.1")],
        domainName: "example.internal",
        searchDomains: ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"],
        hostname: "vm-0",
        mtu: 1450,
        leaseSeconds: 3600)

    /// A client message as the given MAC would send it.
    static func request(
        _ type: DHCPMessageType?, from client: MACAddress = clientMAC, xid: UInt32 = 0x1234_5678,
        ciaddr: IPv4Address = IPv4Address(0), giaddr: IPv4Address = IPv4Address(0), broadcast: Bool = false,
        requested: IPv4Address? = nil, server: IPv4Address? = nil, extra: [DHCPOption] = []
    ) -> DHCPMessage {
        var message = DHCPMessage(op: .request, xid: xid, clientMAC: client)
        message.ciaddr = ciaddr
        message.giaddr = giaddr
        if broadcast { message.flags = DHCPMessage.broadcastFlag }
        message.messageType = type
        if let requested { message.options[.requestedIPAddress] = requested.octets }
        if let server { message.options[.serverIdentifier] = server.octets }
        for option in extra { message.options.append(option.code, option.data) }
        return message
    }
}
