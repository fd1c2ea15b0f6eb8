import NetworkTypes
import Yams

/// cloud-init's `network-config`, version 2 (netplan's schema): every NIC matched by the VM's MAC,
/// with static addresses, routes, name servers and MTU, so a guest is configured even when it never
/// runs a DHCP client.
package struct NetworkConfig: Sendable, Equatable {
    /// One NIC of the VM.
    package struct Interface: Sendable, Equatable {
        /// The key in `ethernets:` (the container interface's name, e.g. `eth0`).
        package var id: String
        package var mac: MACAddress
        package var mtu: Int?
        /// `ADDRESS/PREFIX`, IPv4 or IPv6.
        package var addresses: [String]
        package var routes: [Route]
        package var nameServers: [String]
        package var searchDomains: [String]

        package init(id: String, mac: MACAddress, mtu: Int? = nil, addresses: [String] = [], routes: [Route] = [],
                    nameServers: [String] = [], searchDomains: [String] = []) {
            self.id = id
            self.mac = mac
            self.mtu = mtu
            self.addresses = addresses
            self.routes = routes
            self.nameServers = nameServers
            self.searchDomains = searchDomains
        }
    }

    /// One route; without a gateway it is a link-scope route (`scope: link`).
    package struct Route: Sendable, Equatable {
        /// `NETWORK/PREFIX`; `0.0.0.0/0` or `::/0` for a default route.
        package var destination: String
        package var gateway: String?
        /// The gateway is outside every subnet of the NIC (e.g. Calico's 169.254.1.1): `on-link: true`.
        package var onLink: Bool
        package var metric: UInt32?

        package init(destination: String, gateway: String? = nil, onLink: Bool = false, metric: UInt32? = nil) {
            self.destination = destination
            self.gateway = gateway
            self.onLink = onLink
            self.metric = metric
        }
    }

    package var interfaces: [Interface]

    package init(interfaces: [Interface]) {
        self.interfaces = interfaces
    }

    /// The YAML text, keys in a stable order.
    package func yaml() throws -> String {
        var ethernets: [String: Ethernet] = [:]
        for interface in interfaces {
            let servers = interface.nameServers.isEmpty && interface.searchDomains.isEmpty
                ? nil : NameServers(addresses: interface.nameServers.nilIfEmpty, search: interface.searchDomains.nilIfEmpty)
            ethernets[interface.id] = Ethernet(
                match: Match(macaddress: interface.mac.description),
                mtu: interface.mtu,
                dhcp4: false,
                dhcp6: false,
                acceptRA: false,
                addresses: interface.addresses.nilIfEmpty,
                routes: interface.routes.map { route in
                    YAMLRoute(to: route.destination, via: route.gateway, onLink: route.onLink ? true : nil,
                              scope: route.gateway == nil ? "link" : nil, metric: route.metric)
                }.nilIfEmpty,
                nameservers: servers)
        }
        let encoder = YAMLEncoder()
        encoder.options.sortKeys = true
        return try encoder.encode(Document(version: 2, ethernets: ethernets))
    }

    private struct Document: Encodable {
        var version: Int
        var ethernets: [String: Ethernet]
    }

    private struct Ethernet: Encodable {
        var match: Match
        var mtu: Int?
        var dhcp4: Bool
        var dhcp6: Bool
        var acceptRA: Bool
        var addresses: [String]?
        var routes: [YAMLRoute]?
        var nameservers: NameServers?

        enum CodingKeys: String, CodingKey {
            case match, mtu, dhcp4, dhcp6, addresses, routes, nameservers
            case acceptRA = "accept-ra"
        }
    }

    private struct Match: Encodable {
        var macaddress: String
    }

    private struct YAMLRoute: Encodable {
        var to: String
        var via: String?
        var onLink: Bool?
        var scope: String?
        var metric: UInt32?

        enum CodingKeys: String, CodingKey {
            case to, via, scope, metric
            case onLink = "on-link"
        }
    }

    private struct NameServers: Encodable {
        var addresses: [String]?
        var search: [String]?
    }
}

extension NetworkConfig.Interface {
    /// Adds the VM's IPv6 configuration (what its Router Advertisements and DHCPv6 answers say, as
    /// static settings): the addresses with their prefix lengths (the on-link prefix comes with each),
    /// a default route through `router` (the gateway's link-local address, always on the link) or,
    /// when no link-local router is known, through `gateway` (the container's global gateway:
    /// `on-link` when no prefix of these addresses holds it, as with a `/128`), and the IPv6 name
    /// servers and search domains after the ones already there, without repeats.
    package mutating func addIPv6(addresses: [IPv6Interface], router: IPv6Address?, gateway: IPv6Address?,
                                 nameServers: [IPv6Address], searchDomains: [String]) {
        guard !addresses.isEmpty else { return }
        for address in addresses where !self.addresses.contains(address.description) {
            self.addresses.append(address.description)
        }
        if let router, router.isLinkLocal {
            routes.append(NetworkConfig.Route(destination: "::/0", gateway: router.description))
        } else if let gateway, gateway.isGlobalUnicast {
            let onLink = !addresses.contains { $0.prefixLength < 128 && $0.contains(gateway) }
            routes.append(NetworkConfig.Route(destination: "::/0", gateway: gateway.description, onLink: onLink))
        }
        for server in nameServers.map(\.description) where !self.nameServers.contains(server) { self.nameServers.append(server) }
        for domain in searchDomains where !self.searchDomains.contains(domain) { self.searchDomains.append(domain) }
    }
}

extension Array {
    var nilIfEmpty: Self? { isEmpty ? nil : self }
}
