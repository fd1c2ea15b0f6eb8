import NetworkTypes

/// Everything the server tells its one client: a pure value built by the attach plan.
///
/// The server answers only the client whose hardware address is ``clientMAC`` and always
/// hands out the same ``address``, so a restarted launcher serves the same answer at once
/// without any lease file.
package struct DHCPLease: Sendable, Equatable, Codable {
    /// The only client this lease is for (the VM's NIC).
    package var clientMAC: MACAddress
    /// Address and prefix: `yiaddr` plus the subnet mask (option 1).
    package var address: IPv4Interface
    /// Option 54; also the source address of every reply.
    package var serverIdentifier: IPv4Address
    /// Option 3, only when set. Also the default route inside option 121 when ``staticRoutes`` is non-empty.
    package var router: IPv4Address?
    /// Option 121 (RFC 3442). RFC 3442 clients ignore option 3 when 121 is present, so the default
    /// route via ``router`` is appended to 121 unless a default route is already listed.
    package var staticRoutes: [DHCPStaticRoute]
    /// Option 6.
    package var dnsServers: [IPv4Address]
    /// Option 15.
    package var domainName: String?
    /// Option 119 (RFC 3397), encoded with RFC 1035 name compression.
    package var searchDomains: [String]
    /// Option 12.
    package var hostname: String?
    /// Option 26 (68...65535).
    package var mtu: Int?
    /// Option 51; ``infinite`` (the launcher default) omits the renewal times 58 and 59.
    package var leaseSeconds: UInt32

    /// The lease time meaning "never expires" (RFC 2131 section 3.3).
    package static let infinite: UInt32 = 0xFFFF_FFFF

    package init(
        clientMAC: MACAddress,
        address: IPv4Interface,
        serverIdentifier: IPv4Address,
        router: IPv4Address? = nil,
        staticRoutes: [DHCPStaticRoute] = [],
        dnsServers: [IPv4Address] = [],
        domainName: String? = nil,
        searchDomains: [String] = [],
        hostname: String? = nil,
        mtu: Int? = nil,
        leaseSeconds: UInt32 = DHCPLease.infinite
    ) {
        self.clientMAC = clientMAC
        self.address = address
        self.serverIdentifier = serverIdentifier
        self.router = router
        self.staticRoutes = staticRoutes
        self.dnsServers = dnsServers
        self.domainName = domainName
        self.searchDomains = searchDomains
        self.hostname = hostname
        self.mtu = mtu
        self.leaseSeconds = leaseSeconds
    }

    /// The routes option 121 carries: ``staticRoutes`` followed by the default route via
    /// ``router`` (when there is a router and no default route is listed yet). Empty when
    /// ``staticRoutes`` is empty, in which case option 3 alone carries the router.
    package var classlessRoutes: [DHCPStaticRoute] {
        guard !staticRoutes.isEmpty else { return [] }
        var routes = staticRoutes
        if let router, !routes.contains(where: { $0.destination.prefixLength == 0 }) {
            routes.append(DHCPStaticRoute(destination: IPv4Interface(address: IPv4Address(0), prefixLength: 0), gateway: router))
        }
        return routes
    }

    /// Checks that every field fits its DHCP option; the server refuses to start otherwise.
    package func validate() throws(DHCPLeaseError) {
        if clientMAC.isMulticast || clientMAC.isZero { throw .invalidClientMAC(clientMAC) }
        if address.address.isUnspecified || address.address == address.network && address.prefixLength < 31 {
            throw .unusableAddress(address)
        }
        if serverIdentifier.isUnspecified { throw .unspecifiedServerIdentifier }
        if let mtu, !(68...65535).contains(mtu) { throw .mtuOutOfRange(mtu) }
        if dnsServers.count > 63 { throw .tooManyValues(option: "DNS servers (option 6)", count: dnsServers.count) }
        if let hostname, hostname.utf8.isEmpty || hostname.utf8.count > 255 { throw .invalidText(option: "hostname (option 12)", hostname) }
        if let domainName, domainName.utf8.isEmpty || domainName.utf8.count > 255 { throw .invalidText(option: "domain name (option 15)", domainName) }
        for domain in searchDomains where DomainNameEncoding.labels(of: domain) == nil {
            throw .invalidSearchDomain(domain)
        }
        if DomainNameEncoding.encode(searchDomains).count > 255 * 4 {
            throw .tooManyValues(option: "search domains (option 119)", count: searchDomains.count)
        }
        if classlessRoutes.count > 60 { throw .tooManyValues(option: "static routes (option 121)", count: classlessRoutes.count) }
    }
}

/// One classless static route of option 121 (RFC 3442). A gateway of 0.0.0.0 means the
/// destination is on-link (reachable directly through the interface).
package struct DHCPStaticRoute: Sendable, Equatable, Codable {
    /// The destination network; host bits beyond the prefix are ignored on the wire.
    package var destination: IPv4Interface
    package var gateway: IPv4Address

    package init(destination: IPv4Interface, gateway: IPv4Address) {
        self.destination = destination
        self.gateway = gateway
    }
}

/// A ``DHCPLease`` field that cannot be put into a DHCP option.
package enum DHCPLeaseError: Error, Equatable, CustomStringConvertible {
    case invalidClientMAC(MACAddress)
    case unusableAddress(IPv4Interface)
    case unspecifiedServerIdentifier
    case mtuOutOfRange(Int)
    case invalidText(option: String, String)
    case invalidSearchDomain(String)
    case tooManyValues(option: String, count: Int)

    package var description: String {
        switch self {
        case .invalidClientMAC(let mac):
            "DHCP lease client MAC \(mac) is not a unicast address; give the VM NIC's own MAC"
        case .unusableAddress(let address):
            "DHCP lease address \(address) is a network or unspecified address; give the interface's host address"
        case .unspecifiedServerIdentifier:
            "DHCP server identifier is 0.0.0.0; give the server-side interface address (e.g. a 169.254.x.y address)"
        case .mtuOutOfRange(let mtu):
            "DHCP lease MTU \(mtu) is outside 68...65535; give the interface MTU"
        case .invalidText(let option, let value):
            "DHCP lease \(option) \"\(value)\" must be 1 to 255 bytes long; shorten or drop it"
        case .invalidSearchDomain(let domain):
            "DHCP search domain \"\(domain)\" is not a valid DNS name (labels of 1-63 bytes, 255 total); fix the search list"
        case .tooManyValues(let option, let count):
            "DHCP lease has too many \(option) (\(count)) to fit the DHCP message; list fewer"
        }
    }
}
