import DHCPServer
import NetworkTypes

/// Everything the VM behind one interface is told over IPv6: the global addresses the container
/// had (with their prefix lengths), name servers, search domains, the router and the MTU.
/// A value: the same lease always produces the same answers, so a restarted launcher answers the
/// same with no lease file.
package struct IPv6Lease: Sendable, Equatable {
    /// Only frames from this MAC are answered, and only it is sent to.
    package var clientMAC: MACAddress
    /// The VM's global addresses. DHCPv6 hands out the addresses (IA_NA); the Router Advertisement
    /// carries each prefix as on-link, which is where the VM learns the prefix length.
    package var addresses: [IPv6Interface]
    /// Option 23.
    package var dnsServers: [IPv6Address]
    /// Option 24.
    package var searchDomains: [String]
    /// The link-local address the Router Advertisements come from, which the VM installs as its
    /// default router; nil: the advertisements come from the server's own link-local address with
    /// router lifetime 0 (prefixes and flags only, no default route).
    package var router: IPv6Address?
    /// Seconds the VM keeps ``router`` as default router after an advertisement (RFC 4861 AdvDefaultLifetime).
    package var routerLifetime: UInt16
    /// The link MTU for the RA's MTU option; nil leaves it out.
    package var mtu: Int?
    /// The server's DUID (option 2). The default depends only on the client's MAC: stable across restarts.
    package var serverDUID: [UInt8]
    /// Lifetimes of each address; `UInt32.max` is infinite (the default, as for DHCPv4).
    package var preferredLifetime: UInt32
    package var validLifetime: UInt32
    /// Answer a SOLICIT carrying Rapid Commit (option 14) with the REPLY at once (RFC 8415 section 18.3.1).
    package var rapidCommit: Bool

    package init(clientMAC: MACAddress, addresses: [IPv6Interface], dnsServers: [IPv6Address] = [],
                searchDomains: [String] = [], router: IPv6Address? = nil, routerLifetime: UInt16 = 1800,
                mtu: Int? = nil, serverDUID: [UInt8]? = nil,
                preferredLifetime: UInt32 = .max, validLifetime: UInt32 = .max, rapidCommit: Bool = true) {
        self.clientMAC = clientMAC
        self.addresses = addresses
        self.dnsServers = dnsServers
        self.searchDomains = searchDomains
        self.router = router
        self.routerLifetime = routerLifetime
        self.mtu = mtu
        self.serverDUID = serverDUID ?? Self.defaultServerDUID(for: clientMAC)
        self.preferredLifetime = preferredLifetime
        self.validLifetime = validLifetime
        self.rapidCommit = rapidCommit
    }

    /// A DUID-LL (RFC 8415 section 11.4, hardware type 1) over the client's MAC with the
    /// universal/local bit inverted: no NIC has it, and it is the same for every launch of this VM.
    package static func defaultServerDUID(for clientMAC: MACAddress) -> [UInt8] {
        var mac = clientMAC.octets
        mac[0] ^= 0x02
        return [0, 3, 0, 1] + mac
    }

    /// Checks what the wire cannot carry or a client would reject; the launcher calls it before any change.
    package func validate() throws(IPv6LeaseError) {
        guard !addresses.isEmpty else { throw .noAddress }
        for address in addresses {
            guard address.address.isGlobalUnicast else { throw .notGlobal(address) }
            guard address.prefixLength >= 1 else { throw .prefixLength(address) }
        }
        for server in dnsServers where server.isUnspecified || server.isMulticast || server.isLoopback {
            throw .nameServer(server)
        }
        for domain in searchDomains where DomainNameEncoding.labels(of: domain) == nil { throw .domain(domain) }
        if let router, !router.isLinkLocal { throw .routerNotLinkLocal(router) }
        if let mtu, !(1280...65535).contains(mtu) { throw .mtu(mtu) }
        guard (3...130).contains(serverDUID.count) else { throw .duidLength(serverDUID.count) }
        guard clientMAC != MACAddress([0, 0, 0, 0, 0, 0]), !clientMAC.isMulticast else { throw .clientMAC(clientMAC) }
        guard preferredLifetime <= validLifetime else { throw .lifetimes(preferred: preferredLifetime, valid: validLifetime) }
    }
}

/// Why an ``IPv6Lease`` cannot be served.
package enum IPv6LeaseError: Error, Sendable, Equatable, CustomStringConvertible {
    case noAddress
    case notGlobal(IPv6Interface)
    case prefixLength(IPv6Interface)
    case nameServer(IPv6Address)
    case domain(String)
    case routerNotLinkLocal(IPv6Address)
    case mtu(Int)
    case duidLength(Int)
    case clientMAC(MACAddress)
    case lifetimes(preferred: UInt32, valid: UInt32)

    package var description: String {
        switch self {
        case .noAddress: "an IPv6 lease needs at least one global address"
        case .notGlobal(let address): "\(address) is not a global unicast address; only those go to the VM"
        case .prefixLength(let address): "\(address) has prefix length 0"
        case .nameServer(let server): "IPv6 name server \(server) cannot be reached by the VM"
        case .domain(let domain): "search domain \"\(domain)\" is not a valid DNS name"
        case .routerNotLinkLocal(let router): "router \(router) is not link-local; Router Advertisements must come from a link-local address"
        case .mtu(let mtu): "MTU \(mtu) is outside IPv6's 1280...65535"
        case .duidLength(let count): "server DUID of \(count) bytes (3...130 allowed)"
        case .clientMAC(let mac): "\(mac) is not a unicast MAC"
        case .lifetimes(let preferred, let valid): "preferred lifetime \(preferred) exceeds valid lifetime \(valid)"
        }
    }
}
