import FoundationEssentials

/// Renders an ``AttachPlan`` for `kvm-launch --dry-run`: what recovery restores first (when an
/// earlier run left state behind), then per interface the mode, MACs, the VM's address, gateway,
/// routes, DNS, MTU and the attach steps.
package enum PlanReport {
    /// Human-readable text: the recovery steps, then one block per interface.
    package static func text(_ plan: AttachPlan, recovery: RecoveryPlan? = nil) -> String {
        var lines: [String] = []
        if let recovery, !recovery.isEmpty {
            lines.append("recovery: an earlier run left state in this namespace; first:")
            for step in recovery.steps { lines.append("  \(step)") }
        }
        guard !plan.interfaces.isEmpty else { return (lines + ["no interface is attached: the VM has no NIC"]).joined(separator: "\n") }
        for (nic, interface) in plan.interfaces.enumerated() {
            lines.append("NIC \(nic): \(interface.name) (#\(interface.index)) via \(interface.mode.rawValue) \(interface.vmLinkName)" +
                         (interface.bridgeName.map { " on bridge \($0)" } ?? ""))
            lines.append("  guest MAC      \(interface.guestMAC)  (the container's original)")
            lines.append("  container MAC  \(interface.containerMAC)  (new, random)")
            lines.append("  guest address  \(interface.guestAddress?.description ?? "none")")
            if !interface.keptAddresses.isEmpty {
                lines.append("  kept           \(interface.keptAddresses.map(\.description).joined(separator: ", ")) (stays on \(interface.name))")
            }
            lines.append("  container side \(interface.containerSideName) \(interface.containerSideAddress)")
            lines.append("  MTU            \(interface.mtu) (the NIC's own, virtio host_mtu: no DHCP needed)")
            if let lease = interface.lease {
                lines.append("  DHCP           router \(lease.router?.description ?? "-"), DNS \(lease.dnsServers.isEmpty ? "-" : lease.dnsServers.map(\.description).joined(separator: ",")), search \(lease.searchDomains.isEmpty ? "-" : lease.searchDomains.joined(separator: ",")), host name \(lease.hostname ?? "-")")
                if let relay = interface.dnsRelay {
                    lines.append("  DNS relay      \(relay.listenAddress):53 -> \(relay.upstreams.map(\.description).joined(separator: ", ")) (the container's loopback resolvers), for \(relay.clients.map(\.description).joined(separator: ", "))")
                }
                for route in lease.staticRoutes {
                    lines.append("  route          \(route.destination) via \(route.gateway?.description ?? "on-link")")
                }
            } else if interface.guestAddress == nil {
                lines.append("  DHCP           none: no IPv4 address, the VM gets the MAC and the link only")
            } else {
                lines.append("  DHCP           off")
            }
            if let ipv6 = interface.ipv6 {
                lines.append("  guest IPv6     \(ipv6.movedAddresses.map(\.description).joined(separator: ", ")) (moved off \(interface.name))")
                if ipv6.served {
                    lines.append("  RA + DHCPv6    router \(ipv6.router?.description ?? "- (no IPv6 default route)"), DNS \(ipv6.dnsServers.isEmpty ? "-" : ipv6.dnsServers.map(\.description).joined(separator: ",")), search \(ipv6.searchDomains.isEmpty ? "-" : ipv6.searchDomains.joined(separator: ","))")
                } else {
                    lines.append("  RA + DHCPv6    off")
                }
            }
            if let swap = interface.linkLocalSwap, let replacement = swap.replacement {
                lines.append("  link-local     \(swap.original.map(\.cidr).joined(separator: ", ")) -> \(replacement.cidr) on \(interface.name) while the VM runs")
            }
            lines.append("  attach steps   \(Attacher.steps(for: interface).count)")
        }
        for warning in plan.warnings { lines.append("warning: \(warning)") }
        return lines.joined(separator: "\n")
    }

    /// The plan as JSON (for tools), keys sorted. Besides the plan: `attachSteps` (per interface,
    /// in NIC order, the steps the attacher takes; `KVM_LAUNCH_TEST_KILL_AFTER_STEP` counts them
    /// across interfaces), `attachStepCount` (their total), and `recovery` (the restore steps, empty
    /// for a clean namespace), and `libvirtDomainXML` with `VM_BACKEND=libvirt`.
    /// - Parameter cloudInit: the seed's redacted summary and network-config lines, when there is a seed.
    package static func json(_ plan: AttachPlan, qemuArguments: [String]? = nil, recovery: RecoveryPlan? = nil,
                            libvirtDomainXML: String? = nil, cloudInit: [String]? = nil) -> String {
        struct InterfaceSteps: Encodable {
            var interface: String
            var steps: [String]
        }
        struct Document: Encodable {
            var interfaces: [InterfacePlan]
            var warnings: [String]
            var qemu: [String]?
            var attachSteps: [InterfaceSteps]
            var attachStepCount: Int
            var recovery: [String]
            /// `VM_BACKEND=libvirt`: the domain XML libvirt is given.
            var libvirtDomainXML: String?
            var cloudInit: [String]?
        }
        let steps = plan.interfaces.map { InterfaceSteps(interface: $0.name, steps: Attacher.steps(for: $0).map(\.description)) }
        let document = Document(interfaces: plan.interfaces, warnings: plan.warnings, qemu: qemuArguments,
                                attachSteps: steps, attachStepCount: steps.reduce(0) { $0 + $1.steps.count },
                                recovery: recovery?.steps.map(\.description) ?? [], libvirtDomainXML: libvirtDomainXML, cloudInit: cloudInit)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(document)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
