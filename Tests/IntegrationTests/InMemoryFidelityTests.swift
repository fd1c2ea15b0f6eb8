import Foundation
import InMemoryNetlink
import Netlink
import NetworkTypes
import SystemPackage
import Testing
import TestSupport

/// The in-memory namespace the attacher's unit tests run on must refuse and do what the kernel
/// refuses and does: the same operations, one after another, on a real namespace (through
/// `NetlinkSocket`) and on the in-memory one seeded from it, with the same outcome (success or the
/// same errno) and the same links, IPv4 addresses (in order) and main-table routes after each.
@Suite(.serialized, .enabled(if: isRoot, needsRootReason))
struct InMemoryFidelityTests {
    typealias Operation = (label: String, run: (any NetlinkOperations) throws(NetlinkError) -> Void)

    /// What both must agree on, with link indexes replaced by names.
    static func view(_ netlink: any NetlinkOperations) throws -> [String] {
        let links = try netlink.links()
        let names = Dictionary(uniqueKeysWithValues: links.map { ($0.index, $0.name) })
        func name(_ index: Int32?) -> String { index.map { names[$0] ?? "#\($0)" } ?? "-" }
        var lines = links.map { link in
            "link \(link.name) \(link.kind) \(link.mac?.description ?? "-") \(link.isUp ? "up" : "down") master \(name(link.masterIndex)) lower \(name(link.lowerIndex)) alias \(link.alias ?? "-") group \(link.group)"
        }
        lines += try netlink.addresses().filter { $0.family == .inet }.map { "address \(name($0.interfaceIndex)) \($0.cidr)" }
        lines += try netlink.routes().filter { $0.family == .inet && $0.table == .main }.map { route in
            "route \(route.destination)/\(route.prefixLength) via \(route.gateway?.description ?? "-") dev \(name(route.interfaceIndex)) scope \(route.scope) proto \(route.routeProtocol) metric \(route.priority) src \(route.preferredSource?.description ?? "-")"
        }.sorted()
        return lines
    }

    static func outcome(_ operation: Operation, on netlink: any NetlinkOperations) -> String {
        do {
            try operation.run(netlink)
            return "ok"
        } catch {
            return error.errno.map { NetlinkError.errnoName($0) } ?? "libnl \(error.code)"
        }
    }

    static func address(_ index: Int32, _ text: String) -> AddressRecord { .on(index, text) }

    static func route(_ index: Int32, _ destination: String, via gateway: String? = nil) -> RouteRecord { .on(index, destination, via: gateway) }

    static func index(_ netlink: any NetlinkOperations, _ name: String) throws(NetlinkError) -> Int32 {
        guard let link = try netlink.link(named: name) else { throw NetlinkError(operation: "find \(name)", errno: .operationNotSupportedByDevice) }
        return link.index
    }

    @Test func inMemoryNamespaceBehavesLikeTheKernel() throws {
        let namespace = try TestNamespace(prefix: "kl-fid")
        defer { namespace.destroy() }
        try namespace.ip("link add eth0 type veth peer name peer0")
        try namespace.ip("link set eth0 address 02:00:00:00:0f:01 up")
        try namespace.ip("link set peer0 up")
        let real = try NetworkNamespace.run(inNamespaceAt: namespace.path) { try NetlinkSocket() }
        let snapshot = try real.snapshot()
        let model = InMemoryNamespace(links: snapshot.links, addresses: snapshot.addresses, routes: snapshot.routes)
        let eth0 = try Self.index(real, "eth0")
        let macvlanMAC = MACAddress("02:00:00:00:0f:22")!

        let operations: [Operation] = [
            ("add 10.9.0.1/24", { n throws(NetlinkError) in try n.addAddress(Self.address(eth0, "10.9.0.1/24")) }),
            ("add 10.9.0.2/24 (secondary)", { n throws(NetlinkError) in try n.addAddress(Self.address(eth0, "10.9.0.2/24")) }),
            ("add 10.8.0.1/24", { n throws(NetlinkError) in try n.addAddress(Self.address(eth0, "10.8.0.1/24")) }),
            ("add 10.9.0.1/24 again", { n throws(NetlinkError) in try n.addAddress(Self.address(eth0, "10.9.0.1/24")) }),
            ("default via an unreachable gateway", { n throws(NetlinkError) in try n.addRoute(Self.route(eth0, "0.0.0.0/0", via: "169.254.1.1")) }),
            ("169.254.1.1 scope link", { n throws(NetlinkError) in try n.addRoute(Self.route(eth0, "169.254.1.1/32")) }),
            ("default via 169.254.1.1", { n throws(NetlinkError) in try n.addRoute(Self.route(eth0, "0.0.0.0/0", via: "169.254.1.1")) }),
            ("default again", { n throws(NetlinkError) in try n.addRoute(Self.route(eth0, "0.0.0.0/0", via: "10.9.0.254")) }),
            ("10.50.0.0/16 via 10.8.0.254", { n throws(NetlinkError) in try n.addRoute(Self.route(eth0, "10.50.0.0/16", via: "10.8.0.254")) }),
            ("delete primary 10.9.0.1/24", { n throws(NetlinkError) in try n.deleteAddress(Self.address(eth0, "10.9.0.1/24")) }),
            ("re-add 10.9.0.1/24", { n throws(NetlinkError) in try n.addAddress(Self.address(eth0, "10.9.0.1/24")) }),
            ("delete 10.8.0.1/24", { n throws(NetlinkError) in try n.deleteAddress(Self.address(eth0, "10.8.0.1/24")) }),
            ("delete a missing address", { n throws(NetlinkError) in try n.deleteAddress(Self.address(eth0, "10.77.0.1/24")) }),
            ("delete the last address", { n throws(NetlinkError) in try n.deleteAddress(Self.address(eth0, "10.9.0.1/24")) }),
            ("add a /32", { n throws(NetlinkError) in try n.addAddress(Self.address(eth0, "10.244.1.9/32")) }),
            ("macvtap with eth0's MAC", { n throws(NetlinkError) in try n.addMacvlan(kind: .macvtap, name: "kftap0", parentIndex: eth0, mac: MACAddress("02:00:00:00:0f:01")) }),
            ("bring it up", { n throws(NetlinkError) in try n.changeLink(index: try Self.index(n, "kftap0"), up: true) }),
            ("delete it", { n throws(NetlinkError) in try n.deleteLink(index: try Self.index(n, "kftap0")) }),
            ("macvlan", { n throws(NetlinkError) in try n.addMacvlan(kind: .macvlan, name: "kfmv0", parentIndex: eth0, mac: macvlanMAC, up: true) }),
            ("second macvlan, same MAC, up", { n throws(NetlinkError) in try n.addMacvlan(kind: .macvlan, name: "kfmv1", parentIndex: eth0, mac: macvlanMAC, up: true) }),
            ("second macvlan, down", { n throws(NetlinkError) in try n.addMacvlan(kind: .macvlan, name: "kfmv2", parentIndex: eth0, mac: macvlanMAC, up: false) }),
            ("alias on the macvlan", { n throws(NetlinkError) in try n.changeLink(index: try Self.index(n, "kfmv0"), alias: "kvm-launch:created") }),
            ("bridge", { n throws(NetlinkError) in try n.addBridge(name: "kfbr0", mac: MACAddress("02:00:00:00:0f:33")) }),
            ("eth0 into the bridge while macvlans sit on it", { n throws(NetlinkError) in try n.changeLink(index: eth0, masterIndex: try Self.index(n, "kfbr0")) }),
            ("delete the macvlans", { n throws(NetlinkError) in
                try n.deleteLink(index: try Self.index(n, "kfmv0"))
                try n.deleteLink(index: try Self.index(n, "kfmv2"))
            }),
            ("eth0 into the bridge", { n throws(NetlinkError) in try n.changeLink(index: eth0, masterIndex: try Self.index(n, "kfbr0")) }),
            ("macvlan on a bridge port", { n throws(NetlinkError) in try n.addMacvlan(kind: .macvlan, name: "kfmv3", parentIndex: eth0, mac: nil, up: false) }),
            ("delete the bridge", { n throws(NetlinkError) in try n.deleteLink(index: try Self.index(n, "kfbr0")) }),
            ("delete a missing link", { n throws(NetlinkError) in try n.deleteLink(index: 99_999) }),
            ("169.254.1.1 scope link for the /32", { n throws(NetlinkError) in try n.addRoute(Self.route(eth0, "169.254.1.1/32")) }),
            ("eth0 down", { n throws(NetlinkError) in try n.changeLink(index: eth0, up: false) }),
            ("route on a down link", { n throws(NetlinkError) in try n.addRoute(Self.route(eth0, "10.60.0.0/16")) }),
            ("add 10.9.0.1/24 while down", { n throws(NetlinkError) in try n.addAddress(Self.address(eth0, "10.9.0.1/24")) }),
            ("eth0 up", { n throws(NetlinkError) in try n.changeLink(index: eth0, up: true) }),
            ("macvlan in a group", { n throws(NetlinkError) in try n.addMacvlan(kind: .macvlan, name: "kfmv4", parentIndex: eth0, mac: MACAddress("02:00:00:00:0f:44"), up: true, group: 0x6B6C) }),
            ("bridge in the group", { n throws(NetlinkError) in try n.addBridge(name: "kfbr1", mac: MACAddress("02:00:00:00:0f:55"), group: 0x6B6C) }),
            ("the macvlan leaves the group and rejoins", { n throws(NetlinkError) in
                try n.changeLink(index: try Self.index(n, "kfmv4"), group: 7)
                try n.changeLink(index: try Self.index(n, "kfmv4"), group: 0x6B6C)
            }),
            ("delete the group", { n throws(NetlinkError) in try n.deleteLinks(group: 0x6B6C) }),
            ("delete the empty group", { n throws(NetlinkError) in try n.deleteLinks(group: 0x6B6C) }),
            ("alias, then clear it", { n throws(NetlinkError) in
                try n.changeLink(index: eth0, alias: "kvm-launch:v1 m=02:00:00:00:0f:01")
                try n.changeLink(index: eth0, alias: "")
            }),
        ]
        #expect(try Self.view(real) == Self.view(model), "the seeded model starts like the namespace")
        var outcomes: [String] = []
        for operation in operations {
            let kernel = Self.outcome(operation, on: real)
            let memory = Self.outcome(operation, on: model)
            outcomes.append("\(operation.label): \(kernel)")
            #expect(kernel == memory, "\(operation.label): the kernel answered \(kernel), the model \(memory)")
            let kernelView = try Self.view(real), modelView = try Self.view(model)
            #expect(kernelView == modelView, "after \(operation.label): only in the kernel \(kernelView.filter { !modelView.contains($0) }), only in the model \(modelView.filter { !kernelView.contains($0) })")
        }
        // The refusals the script is built to provoke did happen (in both, by the checks above).
        let refused = outcomes.filter { !$0.hasSuffix(": ok") }
        #expect(refused == [
            "add 10.9.0.1/24 again: EEXIST", "default via an unreachable gateway: ENETUNREACH", "default again: EEXIST",
            "delete a missing address: EADDRNOTAVAIL", "bring it up: EADDRINUSE", "second macvlan, same MAC, up: EADDRINUSE",
            "eth0 into the bridge while macvlans sit on it: EBUSY", "macvlan on a bridge port: EBUSY",
            "delete a missing link: ENODEV", "route on a down link: ENETDOWN", "delete the empty group: ENODEV",
        ])
    }
}
