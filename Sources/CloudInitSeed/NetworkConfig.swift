import NetworkTypes

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

    /// The YAML text: block style, keys sorted, every string double-quoted (so no value is ever read
    /// back as a number, a boolean or a YAML 1.1 sexagesimal), numbers and booleans plain.
    package func yaml() -> String {
        var byID: [String: Interface] = [:]
        for interface in interfaces { byID[interface.id] = interface }
        var text = byID.isEmpty ? "ethernets: {}\n" : "ethernets:\n"
        for id in byID.keys.sorted() {
            let interface = byID[id]!
            text += "  \(Self.quoted(id)):\n"
            text += "    accept-ra: false\n"
            text += Self.list("addresses", interface.addresses, indent: 4)
            text += "    dhcp4: false\n    dhcp6: false\n"
            text += "    match:\n      macaddress: \(Self.quoted(interface.mac.description))\n"
            if let mtu = interface.mtu { text += "    mtu: \(mtu)\n" }
            if !interface.nameServers.isEmpty || !interface.searchDomains.isEmpty {
                text += "    nameservers:\n"
                text += Self.list("addresses", interface.nameServers, indent: 6)
                text += Self.list("search", interface.searchDomains, indent: 6)
            }
            if !interface.routes.isEmpty {
                text += "    routes:\n"
                for route in interface.routes {
                    var fields: [String] = []
                    if let metric = route.metric { fields.append("metric: \(metric)") }
                    if route.onLink { fields.append("on-link: true") }
                    if route.gateway == nil { fields.append("scope: \"link\"") }
                    fields.append("to: \(Self.quoted(route.destination))")
                    if let gateway = route.gateway { fields.append("via: \(Self.quoted(gateway))") }
                    text += "    - " + fields.joined(separator: "\n      ") + "\n"
                }
            }
        }
        return text + "version: 2\n"
    }

    /// `name:` and one `- "item"` line per item at `indent`; nothing for no items.
    private static func list(_ name: String, _ items: [String], indent: Int) -> String {
        guard !items.isEmpty else { return "" }
        let pad = String(repeating: " ", count: indent)
        return pad + name + ":\n" + items.map { pad + "- " + quoted($0) + "\n" }.joined()
    }

    /// `text` as a YAML double-quoted scalar: `"` and `\` escaped, control characters as `\xNN`, the
    /// C1 controls, the line breaks YAML knows (NEL, LS, PS), the BOM and the non-characters as `\uNNNN`.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    result += "\\x" + (hex.count < 2 ? "0" : "") + hex
                } else if (0x80...0x9F).contains(scalar.value) || [0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF].contains(scalar.value) {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
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
