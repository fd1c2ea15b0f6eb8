import IPv6Server
import LaunchConfiguration
import Netlink
import NetworkTypes

/// What the DHCP server will tell the VM on one interface. Mirrors the DHCP answer, without I/O.
package struct PlannedLease: Sendable, Equatable, Codable {
    package var clientMAC: MACAddress
    /// The VM's address and prefix: yiaddr and subnet mask.
    package var address: IPv4Interface
    /// The container-side address: server identifier and source of replies.
    package var serverIdentifier: IPv4Address
    /// Option 3, only when the gateway is on-link.
    package var router: IPv4Address?
    /// Option 121 routes (gateway 0.0.0.0 means on-link).
    package var staticRoutes: [RecordedRoute]
    package var dnsServers: [IPv4Address]
    package var domainName: String?
    package var searchDomains: [String]
    package var hostname: String?
    package var mtu: Int
    /// 0xFFFF_FFFF: does not expire while the container lives.
    package var leaseSeconds: UInt32
}

/// The plan for one container interface handed to the VM.
package struct InterfacePlan: Sendable, Equatable, Codable {
    /// The container interface.
    package var name: String
    package var index: Int32
    package var mode: LaunchConfiguration.NetworkMode
    /// The VM's MAC: the interface's original MAC.
    package var guestMAC: MACAddress
    /// The new random locally-administered MAC the container interface gets.
    package var containerMAC: MACAddress
    package var mtu: Int
    /// The address moved to the VM (removed from the container interface), or nil when it has none.
    package var guestAddress: IPv4Interface?
    /// Its broadcast address on the container interface, restored with it.
    package var guestAddressBroadcast: IPv4Address?
    /// The other IPv4 addresses, which stay on the container interface.
    package var keptAddresses: [IPv4Interface]
    /// The default gateway through this interface, if any.
    package var gateway: IPv4Address?
    /// Routes through the interface, recorded to be restored on teardown.
    package var routes: [RecordedRoute]
    /// The alias the interface had, restored on teardown.
    package var previousAlias: String?
    /// The link the VM's frames go through: a macvtap (macvtap mode) or a tap (bridge mode).
    package var vmLinkName: String
    /// Bridge mode: the bridge joining the interface and the tap.
    package var bridgeName: String?
    /// The container's own device toward the VM (a macvlan, or the bridge), where the DHCP server listens.
    package var containerSideName: String
    package var containerSideAddress: IPv4Interface
    /// nil when DHCP is off or the interface has no IPv4 address.
    package var lease: PlannedLease?
    /// The DNS relay on ``containerSideAddress`` when the container's resolvers are on its loopback
    /// (and the VM gets a lease that names it); nil otherwise.
    package var dnsRelay: PlannedDNSRelay? = nil
    /// The global IPv6 addresses moved to the VM and what its Router Advertisements and DHCPv6
    /// answers say; nil when the interface has no global IPv6 address.
    package var ipv6: PlannedIPv6? = nil
    /// The container interface's link-local address from the original MAC, swapped for one from
    /// ``containerMAC`` while the VM runs (the VM makes the original itself); nil when it has none.
    package var linkLocalSwap: LinkLocalSwap? = nil
    /// Queue pairs of the VM's NIC (`VM_NET_QUEUES`): the macvtap or tap is opened once per queue
    /// (`IFF_MULTI_QUEUE` above 1), and vhost-net once per queue.
    package var queues: Int = 1

    /// The identity written into the interface's alias before anything else changes.
    package var identity: RecordedIdentity {
        RecordedIdentity(mac: guestMAC, address: guestAddress, broadcast: guestAddressBroadcast, routes: routes, previousAlias: previousAlias,
                         secondaries: guestAddress.map { guest in
                             keptAddresses.filter { $0.prefixLength == guest.prefixLength && guest.contains($0.address) }
                         } ?? [],
                         ipv6Addresses: ipv6?.movedAddresses ?? [], ipv6Flags: ipv6?.movedFlags ?? [],
                         linkLocalPrefixLength: linkLocalSwap?.original.first?.prefixLength)
    }
}

/// IPv6 on one interface: the container's global addresses that move to the VM (removed from the
/// interface while it runs, restored at teardown) and, when DHCP is on, what the embedded Router
/// Advertisement sender and DHCPv6 server (Sources/IPv6Server) tell the VM.
package struct PlannedIPv6: Sendable, Equatable, Codable {
    /// In the order the interface had them.
    package var movedAddresses: [IPv6Interface]
    /// Their flags (`nodad`, …), in the same order, restored with them.
    package var movedFlags: [UInt32]
    /// Served by Router Advertisements and DHCPv6 (DHCP on); false: the addresses still move, the VM configures them itself.
    package var served: Bool
    /// The Router Advertisements' source: the link-local IPv6 gateway; nil: no IPv6 default route for the VM.
    package var router: IPv6Address?
    /// The container's IPv6 default gateway as its route names it (global or link-local); nil: none.
    /// cloud-init's static configuration can use a global one directly when ``router`` is unknown.
    package var gateway: IPv6Address? = nil
    /// DHCPv6 option 23.
    package var dnsServers: [IPv6Address]
    /// DHCPv6 option 24.
    package var searchDomains: [String]
    /// The RA's MTU option.
    package var mtu: Int?

    /// The responder's lease for the VM with `clientMAC`.
    package func lease(clientMAC: MACAddress) -> IPv6Lease {
        IPv6Lease(clientMAC: clientMAC, addresses: movedAddresses, dnsServers: dnsServers, searchDomains: searchDomains, router: router, mtu: mtu)
    }
}

extension InterfacePlan {
    /// The IPv6 lease the responder serves on ``containerSideName``; nil when none is served.
    package var ipv6Lease: IPv6Lease? {
        guard let ipv6, ipv6.served else { return nil }
        return ipv6.lease(clientMAC: guestMAC)
    }
}

/// A DNS relay for one interface: the VM asks `listenAddress` (the container-side address, named
/// in the lease's DNS list), the relay asks the container's loopback resolvers.
package struct PlannedDNSRelay: Sendable, Equatable, Codable {
    package var listenAddress: IPv4Address
    /// The container's loopback resolvers, in resolv.conf order.
    package var upstreams: [IPv4Address]
    /// The VM's addresses on this interface: the only sources answered.
    package var clients: [IPv4Address]
}

/// Everything the attach step will do, computed without touching anything.
package struct AttachPlan: Sendable, Equatable, Codable {
    /// In the VM's NIC order.
    package var interfaces: [InterfacePlan]
    /// Things the user should know (loopback name servers left out, SELECTED_NETWORK unmatched, …).
    package var warnings: [String]
}

/// Why no plan could be made.
package enum PlanError: Error, Sendable, Equatable, CustomStringConvertible {
    case noMAC(interface: String)
    case noRoomForNames(interface: String)

    package var description: String {
        switch self {
        case .noMAC(let name):
            return "cannot attach \(name): it has no Ethernet MAC address (only Ethernet-like links can be given to the VM); leave it out of ATTACH_IFACES"
        case .noRoomForNames(let name):
            return "cannot attach \(name): its interface index is too large to name kvm-launch's links after it"
        }
    }
}

/// Computes the ``AttachPlan``: pure, from the inventory, the configuration and the container's
/// resolver settings.
package struct AttachPlanner {
    package var configuration: LaunchConfiguration
    /// The container's resolv.conf, parsed.
    package var resolver: ResolverConfiguration
    /// The container's host name, the VM's default.
    package var hostname: String?
    /// Global IPv6 gateways' link-local addresses learned on the link, by interface index (see
    /// ``IPv6LeasePlan/gatewayQuestions(selected:planned:current:)``); empty: none learned.
    package var ipv6Gateways: [Int32: IPv6GatewayAnswer] = [:]

    package init(configuration: LaunchConfiguration, resolver: ResolverConfiguration, hostname: String?) {
        self.configuration = configuration
        self.resolver = resolver
        self.hostname = hostname
    }

    /// The plan for the selected links (in NIC order) of `inventory`.
    ///
    /// `inventory` must be clean: a namespace left behind by a killed launcher is first restored
    /// (see ``Attacher/recover(_:)``), so that a recorded identity and a fresh one plan alike.
    package func plan<G: RandomNumberGenerator>(selected: [LinkRecord], inventory: Inventory, using generator: inout G) throws(PlanError) -> AttachPlan {
        var warnings: [String] = []
        var plans: [InterfacePlan] = []
        for link in selected {
            guard let mac = link.mac, !mac.isZero, !mac.isMulticast else { throw .noMAC(interface: link.name) }
            guard link.index < 100_000_000 else { throw .noRoomForNames(interface: link.name) }
            let addresses = inventory.ipv4Addresses(on: link.index)
            let guestAddress = pickAddress(addresses, interface: link.name, warnings: &warnings)
            let routes = inventory.routes(through: link.index).filter { $0.routeProtocol != .kernel }.compactMap(RecordedRoute.init)
                .sorted { ($0.destination.prefixLength, $0.metric) < ($1.destination.prefixLength, $1.metric) }
            let gateway = routes.first { $0.destination.prefixLength == 0 && $0.gateway != nil }?.gateway
            let containerSide = containerSideAddress(guestMAC: mac, guest: guestAddress)
            let bridgeMode = configuration.networkMode == .bridge
            var plan = InterfacePlan(
                name: link.name, index: link.index, mode: configuration.networkMode,
                guestMAC: mac, containerMAC: MACAddress.randomLocal(using: &generator), mtu: link.mtu,
                guestAddress: guestAddress,
                guestAddressBroadcast: guestAddress.flatMap { selected in
                    inventory.addresses(on: link.index).first { $0.ipv4 == selected }?.broadcast
                },
                keptAddresses: addresses.filter { $0 != guestAddress },
                gateway: gateway, routes: routes, previousAlias: link.alias,
                vmLinkName: LinkMarker.tapName(for: link.index), bridgeName: bridgeMode ? LinkMarker.bridgeName(for: link.index) : nil,
                containerSideName: bridgeMode ? LinkMarker.bridgeName(for: link.index) : LinkMarker.containerSideName(for: link.index),
                containerSideAddress: containerSide, lease: nil)
            plan.queues = configuration.netQueues
            if configuration.dhcpEnabled, let guestAddress {
                let dns = resolvers(relayAddress: plan.containerSideAddress.address)
                plan.lease = lease(for: plan, guestAddress: guestAddress, dns: dns.nameServers)
                if !dns.relayedTo.isEmpty {
                    let relay = plan.containerSideAddress.address
                    plan.dnsRelay = PlannedDNSRelay(listenAddress: relay, upstreams: dns.relayedTo, clients: [guestAddress.address])
                    if guestAddress.prefixLength == 32 || !guestAddress.contains(relay) {
                        // The VM reaches the relay on the link, not through its gateway.
                        plan.lease?.staticRoutes.insert(RecordedRoute(destination: IPv4Interface(address: relay, prefixLength: 32), gateway: nil), at: 0)
                    }
                }
            } else if configuration.dhcpEnabled {
                warnings.append("\(link.name) has no IPv4 address: the VM gets the link but no DHCP answer on it")
            }
            planIPv6(&plan, link: link, inventory: inventory, warnings: &warnings)
            plans.append(plan)
        }
        return AttachPlan(interfaces: plans, warnings: warnings)
    }

    /// The IPv6 side of one interface: ``IPv6LeasePlan`` for the global addresses and the lease
    /// (name servers: the resolv.conf IPv6 ones, search list as for IPv4), ``LinkLocalSwap`` for the
    /// container interface's link-local address.
    func planIPv6(_ plan: inout InterfacePlan, link: LinkRecord, inventory: Inventory, warnings: inout [String]) {
        let v6 = IPv6LeasePlan.plan(link: link, guestMAC: plan.guestMAC, inventory: inventory, selected: configuration.selectedNetworkIPv6,
                                    dnsServers: resolver.ipv6NameServers, searchDomains: resolver.searchDomains,
                                    gateway: ipv6Gateways[link.index])
        warnings += v6.warnings
        if let lease = v6.lease {
            // Checked here, before any change: a lease the responder would refuse leaves the addresses
            // on the container (the launch goes on without IPv6 for the VM on this interface).
            do {
                try lease.validate()
                plan.ipv6 = PlannedIPv6(movedAddresses: lease.addresses, movedFlags: v6.movedAddresses.map(\.flags), served: configuration.dhcpEnabled, router: lease.router,
                                        gateway: IPv6LeasePlan.defaultGateway(of: link, in: inventory),
                                        dnsServers: lease.dnsServers, searchDomains: lease.searchDomains, mtu: lease.mtu)
            } catch {
                warnings.append("\(link.name): its IPv6 addresses stay on the container, the VM gets no IPv6 there: \(error)")
            }
        }
        let swap = LinkLocalSwap.plan(link: link, newMAC: plan.containerMAC, inventory: inventory)
        plan.linkLocalSwap = swap.replacement == nil ? nil : swap
    }

    /// `SELECTED_NETWORK` picks among several addresses (the first one inside it); default the first.
    func pickAddress(_ addresses: [IPv4Interface], interface: String, warnings: inout [String]) -> IPv4Interface? {
        guard let first = addresses.first else { return nil }
        guard addresses.count > 1, let selected = configuration.selectedNetwork else { return first }
        if let match = addresses.first(where: { selected.contains($0.address) }) { return match }
        warnings.append("\(interface) has \(addresses.map(\.description).joined(separator: ", ")) and none is inside SELECTED_NETWORK=\(selected); the VM gets \(first)")
        return first
    }

    /// The VM's name servers on an interface whose relay would listen on `relayAddress`, and the
    /// loopback resolvers the relay asks (empty: no relay). `DNS_SERVERS` wins; otherwise the
    /// container's in resolv.conf order, its loopback ones (Docker's 127.0.0.11, systemd-resolved's
    /// 127.0.0.53) replaced by the relay, which the VM can reach. 0.0.0.0 is left out.
    func resolvers(relayAddress: IPv4Address) -> (nameServers: [IPv4Address], relayedTo: [IPv4Address]) {
        if let explicit = configuration.dnsServers { return (explicit, []) }
        var servers: [IPv4Address] = []
        var relayed: [IPv4Address] = []
        for server in resolver.nameServers where !server.isUnspecified {
            let handedOut = server.isLoopback ? relayAddress : server
            if server.isLoopback && !relayed.contains(server) { relayed.append(server) }
            if !servers.contains(handedOut) { servers.append(handedOut) }
        }
        return (servers, relayed)
    }

    func lease(for plan: InterfacePlan, guestAddress: IPv4Interface, dns: [IPv4Address]) -> PlannedLease {
        var router: IPv4Address?
        var staticRoutes: [RecordedRoute] = []
        let onLink = { (gateway: IPv4Address) in guestAddress.prefixLength < 32 && guestAddress.contains(gateway) }
        if let gateway = plan.gateway {
            if onLink(gateway) {
                router = gateway
            } else {
                // A /32 with a gateway outside the subnet (Calico's 169.254.1.1): a host route makes the
                // gateway reachable on the link, then the default route can go through it.
                staticRoutes.append(RecordedRoute(destination: IPv4Interface(address: gateway, prefixLength: 32), gateway: nil))
                staticRoutes.append(RecordedRoute(destination: IPv4Interface(address: IPv4Address(0), prefixLength: 0), gateway: gateway))
            }
        }
        for route in plan.routes where route.destination.prefixLength > 0 {
            // The connected route of the VM's own subnet comes with the address.
            if route.gateway == nil && route.destination.network == guestAddress.network
                && route.destination.prefixLength == guestAddress.prefixLength { continue }
            if route.gateway == nil && plan.keptAddresses.contains(where: { $0.network == route.destination.network && $0.prefixLength == route.destination.prefixLength }) { continue }
            if let gateway = route.gateway, !onLink(gateway), !staticRoutes.contains(where: { $0.destination.address == gateway && $0.destination.prefixLength == 32 }) {
                staticRoutes.insert(RecordedRoute(destination: IPv4Interface(address: gateway, prefixLength: 32), gateway: nil), at: 0)
            }
            if !staticRoutes.contains(where: { $0.destination == route.destination }) {
                staticRoutes.append(RecordedRoute(destination: route.destination, gateway: route.gateway))
            }
        }
        let search = resolver.searchDomains
        return PlannedLease(
            clientMAC: plan.guestMAC, address: guestAddress, serverIdentifier: plan.containerSideAddress.address,
            router: router, staticRoutes: staticRoutes, dnsServers: dns,
            domainName: resolver.domain ?? search.first, searchDomains: search,
            hostname: configuration.hostname ?? hostname, mtu: plan.mtu, leaseSeconds: 0xFFFF_FFFF)
    }

    /// The container's own address toward the VM.
    ///
    /// Link-local (default): 169.254.A.B/16 derived from the guest MAC, so the same interface gets the
    /// same address on every run, and never one the container does not own. Widen-prefix (opt-in):
    /// the old container's scheme, the guest address with its prefix one bit shorter and that bit flipped.
    func containerSideAddress(guestMAC: MACAddress, guest: IPv4Interface?) -> IPv4Interface {
        if configuration.containerSideAddress == .widenPrefix, let guest, guest.prefixLength > 1, guest.prefixLength < 31 {
            let bit = UInt32(1) << UInt32(32 - guest.prefixLength)
            return IPv4Interface(address: IPv4Address(guest.address.value ^ bit), prefixLength: guest.prefixLength - 1)
        }
        // FNV-1a over the MAC, folded into 1...254 for each of the two low octets.
        var hash: UInt32 = 2_166_136_261
        for byte in guestMAC.octets { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        let third = UInt8(1 + hash % 254), fourth = UInt8(1 + (hash >> 8) % 254)
        return IPv4Interface(address: IPv4Address(169, 254, third, fourth), prefixLength: 16)
    }
}

import DHCPServer

extension PlannedLease {
    /// The answer the DHCP server gives, as its own type.
    package var dhcpLease: DHCPLease {
        DHCPLease(clientMAC: clientMAC, address: address, serverIdentifier: serverIdentifier, router: router,
                  staticRoutes: staticRoutes.map { DHCPStaticRoute(destination: $0.destination, gateway: $0.gateway ?? IPv4Address(0)) },
                  dnsServers: dnsServers, domainName: domainName, searchDomains: searchDomains,
                  hostname: hostname, mtu: mtu, leaseSeconds: leaseSeconds)
    }
}

import DNSRelay

extension PlannedDNSRelay {
    /// The relay's own configuration (port 53, default limits).
    package var relayConfiguration: DNSRelayConfiguration {
        DNSRelayConfiguration(listenAddress: listenAddress, upstreams: upstreams, clients: clients)
    }
}
