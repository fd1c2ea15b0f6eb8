import DHCPServer
import DNSRelay
import IPv6Server
import NetAttach
import NetworkTypes
import QEMU
import Supervisor

/// Which descriptor number each NIC's tap (and vhost-net) has in QEMU, decided once before anything
/// changes: `--dry-run` prints the same `fd=`/`vhostfd=` numbers the launch passes.
///
/// NIC *n* (0-based) gets its tap on descriptor `3 + 2n` and, with vhost-net, its vhost descriptor
/// on `4 + 2n`.
struct DescriptorLayout: Equatable {
    /// The child-side descriptor numbers of one NIC.
    struct NIC: Equatable {
        var tap: Int32
        var vhost: Int32?
    }

    var nics: [NIC]
    /// Whether vhost-net descriptors are part of the layout (decided from `/dev/vhost-net` at planning).
    var vhost: Bool

    init(nics count: Int, vhost: Bool) {
        self.vhost = vhost
        nics = (0..<count).map { position in
            let tap = Int32(3 + 2 * position)
            return NIC(tap: tap, vhost: vhost ? tap + 1 : nil)
        }
    }

    /// QEMU's NICs, in order, with these descriptors: each with the interface's original MAC and
    /// its MTU as virtio `host_mtu` (the guest has it without DHCP).
    func cards(for interfaces: [InterfacePlan]) -> [NetworkInterfaceCard] {
        zip(interfaces, nics).map { interface, nic in
            NetworkInterfaceCard(mac: interface.guestMAC, backend: .tapFileDescriptor(nic.tap, vhost: nic.vhost.map { .fileDescriptor($0) } ?? .off),
                                 hostMTU: interface.mtu)
        }
    }

    /// The parent → child descriptor mappings for the attachments, which must match the layout.
    func mappings(for attachments: [Attachment]) throws(LaunchError) -> [FileDescriptorMapping] {
        guard attachments.count == nics.count else {
            throw .layoutMismatch("\(attachments.count) attachment(s) for \(nics.count) planned NIC(s)")
        }
        var mappings: [FileDescriptorMapping] = []
        for (attachment, nic) in zip(attachments, nics) {
            mappings.append(FileDescriptorMapping(parent: attachment.descriptor.rawValue, child: nic.tap))
            if let child = nic.vhost {
                guard let vhost = attachment.vhostDescriptor else {
                    throw .layoutMismatch("/dev/vhost-net opened while planning but not for \(attachment.plan.name)")
                }
                mappings.append(FileDescriptorMapping(parent: vhost.rawValue, child: child))
            }
        }
        return mappings
    }
}

/// Why a launch failed after the plan was made; keeps the cause as thrown.
enum LaunchError: Error, CustomStringConvertible {
    /// The DHCP server for an interface could not start.
    case dhcpServer(interface: String, DHCPServerError)
    /// The Router Advertisement + DHCPv6 responder for an interface could not start.
    case ipv6Server(interface: String, IPv6ServerError)
    /// The DNS relay for an interface could not start.
    case dnsRelay(interface: String, DNSRelayError)
    /// QEMU could not be started or supervised.
    case qemu(SupervisorError)
    /// The attachments do not fit the descriptor layout the command line was built with.
    case layoutMismatch(String)

    var description: String {
        switch self {
        case .dhcpServer(let interface, let cause): return "cannot start the DHCP server for \(interface): \(cause)"
        case .ipv6Server(let interface, let cause): return "cannot start the IPv6 responder (Router Advertisements, DHCPv6) for \(interface): \(cause)"
        case .dnsRelay(let interface, let cause): return "cannot start the DNS relay for \(interface): \(cause)"
        case .qemu(let cause): return "QEMU could not be run: \(cause)"
        case .layoutMismatch(let detail): return "the attached interfaces do not match the plan (\(detail)); report this as a bug"
        }
    }
}
