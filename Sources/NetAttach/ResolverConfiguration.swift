import NetworkTypes

/// The parts of a `resolv.conf` the VM's DHCP answer carries: name servers, domain, search list.
package struct ResolverConfiguration: Sendable, Equatable, Codable {
    /// IPv4 name servers in file order (the DHCPv4 answer's; the IPv6 ones are ``ipv6NameServers``).
    package var nameServers: [IPv4Address] = []
    /// IPv6 name servers in file order: the DHCPv6 answer's option 23.
    package var ipv6NameServers: [IPv6Address] = []
    /// `domain`, or nil.
    package var domain: String?
    /// `search`, in order.
    package var searchDomains: [String] = []

    package init(nameServers: [IPv4Address] = [], ipv6NameServers: [IPv6Address] = [], domain: String? = nil, searchDomains: [String] = []) {
        self.nameServers = nameServers
        self.ipv6NameServers = ipv6NameServers
        self.domain = domain
        self.searchDomains = searchDomains
    }

    /// Parses resolv.conf text; unknown lines and malformed servers are skipped, as the resolver does.
    package init(parsing text: String) {
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.prefix { $0 != "#" && $0 != ";" }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let keyword = words.first else { continue }
            switch keyword {
            case "nameserver":
                if words.count > 1, let address = IPv4Address(words[1]) { nameServers.append(address) }
                // A scoped server (fe80::1%eth0) names the container's link, not the VM's: left out.
                else if words.count > 1, let address = IPv6Address(words[1]) { ipv6NameServers.append(address) }
            case "domain":
                if words.count > 1 { domain = String(words[1]) }
            case "search":
                // The last search line wins, as in glibc.
                searchDomains = words.dropFirst().map(String.init)
            default:
                continue
            }
        }
    }
}
