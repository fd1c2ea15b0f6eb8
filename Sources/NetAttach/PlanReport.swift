import Foundation

/// Renders an ``AttachPlan`` for `kvm-launch --dry-run`: per interface the mode, MACs, the VM's
/// address, gateway, routes, DNS and MTU.
public enum PlanReport {
    /// Human-readable text, one block per interface.
    public static func text(_ plan: AttachPlan) -> String {
        guard !plan.interfaces.isEmpty else { return "no interface is attached: the VM has no NIC" }
        var lines: [String] = []
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
                for route in lease.staticRoutes {
                    lines.append("  route          \(route.destination) via \(route.gateway?.description ?? "on-link")")
                }
            } else if interface.guestAddress == nil {
                lines.append("  DHCP           none: no IPv4 address, the VM gets the MAC and the link only")
            } else {
                lines.append("  DHCP           off")
            }
        }
        for warning in plan.warnings { lines.append("warning: \(warning)") }
        return lines.joined(separator: "\n")
    }

    /// The plan as JSON (for tools), keys sorted.
    public static func json(_ plan: AttachPlan, qemuArguments: [String]? = nil) -> String {
        struct Document: Encodable {
            var interfaces: [InterfacePlan]
            var warnings: [String]
            var qemu: [String]?
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(Document(interfaces: plan.interfaces, warnings: plan.warnings, qemu: qemuArguments))) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
