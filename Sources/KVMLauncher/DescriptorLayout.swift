import DHCPServer
import DNSRelay
import IPv6Server
import NetAttach
import NetworkTypes
import QEMU
import Supervisor

/// Which descriptor numbers each NIC's tap queues (and vhost-net) have in QEMU, decided once before
/// anything changes: `--dry-run` prints the same `fd=`/`fds=`/`vhostfds=` numbers the launch passes.
///
/// Each NIC takes a block of `2 × queues` numbers from 3 on: NIC *n* (0-based) has its queues' taps
/// on `3 + 2qn … 3 + 2qn + q − 1` and, with vhost-net, their vhost descriptors on the next *q*.
/// With one queue that is today's layout: tap `3 + 2n`, vhost `4 + 2n`. The disk's descriptors
/// follow at ``next``.
struct DescriptorLayout: Equatable {
    /// The child-side descriptor numbers of one NIC.
    struct NIC: Equatable {
        /// One per queue.
        var taps: [Int32]
        /// One per queue with vhost-net; empty without.
        var vhosts: [Int32]
    }

    var nics: [NIC]
    /// Whether vhost-net descriptors are part of the layout (decided from `/dev/vhost-net` at planning).
    var vhost: Bool
    /// The first descriptor number after the NICs' blocks.
    var next: Int32

    init(nics count: Int, queues: Int = 1, vhost: Bool) {
        self.vhost = vhost
        let queues = max(queues, 1)
        nics = (0..<count).map { position in
            let first = Int32(3 + 2 * queues * position)
            let taps = (0..<queues).map { first + Int32($0) }
            return NIC(taps: taps, vhosts: vhost ? taps.map { $0 + Int32(queues) } : [])
        }
        next = Int32(3 + 2 * queues * count)
    }

    /// QEMU's NICs, in order, with these descriptors: each with the interface's original MAC and
    /// its MTU as virtio `host_mtu` (the guest has it without DHCP); several queues make a
    /// multiqueue NIC (`fds=`, `mq=on`).
    func cards(for interfaces: [InterfacePlan]) -> [NetworkInterfaceCard] {
        zip(interfaces, nics).map { interface, nic in
            let backend: NetworkInterfaceCard.Backend = nic.taps.count == 1
                ? .tapFileDescriptor(nic.taps[0], vhost: nic.vhosts.first.map { .fileDescriptor($0) } ?? .off)
                : .tapQueueDescriptors(nic.taps, vhost: nic.vhosts)
            return NetworkInterfaceCard(mac: interface.guestMAC, backend: backend, hostMTU: interface.mtu)
        }
    }

    /// The parent → child descriptor mappings for the attachments, which must match the layout.
    func mappings(for attachments: [Attachment]) throws(LaunchError) -> [FileDescriptorMapping] {
        guard attachments.count == nics.count else {
            throw .layoutMismatch("\(attachments.count) attachment(s) for \(nics.count) planned NIC(s)")
        }
        var mappings: [FileDescriptorMapping] = []
        for (attachment, nic) in zip(attachments, nics) {
            guard attachment.descriptors.count == nic.taps.count else {
                throw .layoutMismatch("\(attachment.plan.name) has \(attachment.descriptors.count) queue descriptor(s) for \(nic.taps.count) planned")
            }
            for (parent, child) in zip(attachment.descriptors, nic.taps) {
                mappings.append(FileDescriptorMapping(parent: parent.rawValue, child: child))
            }
            if !nic.vhosts.isEmpty {
                guard attachment.vhostDescriptors.count == nic.vhosts.count else {
                    throw .layoutMismatch("/dev/vhost-net opened while planning but not for every queue of \(attachment.plan.name)")
                }
                for (parent, child) in zip(attachment.vhostDescriptors, nic.vhosts) {
                    mappings.append(FileDescriptorMapping(parent: parent.rawValue, child: child))
                }
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
