import Foundation
import Netlink
import NetworkTypes
import SystemPackage
import Testing
import TestSupport

/// Issue 15 items 2 and 3, against the kernel: a link created with `NLM_F_ECHO` answers with its index
/// (the attach then needs no lookup), a refused creation reports the kernel's errno, and the socket
/// reads exactly its own answers, so the next request on it is answered correctly.
@Suite(.serialized, .enabled(if: isRoot, needsRootReason))
struct NetlinkEchoIntegrationTests {
    /// Linux 6.2 added the echo of a new link; older kernels answer with the acknowledgement only.
    static let kernelEchoes: Bool = {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return parts.count == 2 && (parts[0], parts[1]) >= (6, 2)
    }()

    /// A socket in `namespace`, which holds a veth pair eth0–peer0; eth0's index.
    static func socket(in namespace: TestNamespace) throws -> (NetlinkSocket, eth0: Int32) {
        try namespace.ip("link add eth0 type veth peer name peer0")
        let socket = try NetworkNamespace.run(inNamespaceAt: namespace.path) { try NetlinkSocket() }
        return (socket, try #require(try socket.link(named: "eth0")).index)
    }

    /// The answer is the index the kernel gave the link, for a macvtap, a macvlan and a bridge.
    @Test func newLinksAnswerWithTheirIndex() throws {
        let namespace = try TestNamespace(prefix: "kl-echo")
        defer { namespace.destroy() }
        let (socket, eth0) = try Self.socket(in: namespace)
        let answers = [
            ("kne-tap", try socket.addMacvlan(kind: .macvtap, name: "kne-tap", parentIndex: eth0, mac: MACAddress("02:00:00:00:0e:01"), up: false, group: 0x6B6C)),
            ("kne-vlan", try socket.addMacvlan(kind: .macvlan, name: "kne-vlan", parentIndex: eth0, mac: MACAddress("02:00:00:00:0e:02"), up: false, group: 0x6B6C)),
            ("kne-br", try socket.addBridge(name: "kne-br", mac: MACAddress("02:00:00:00:0e:03"), group: 0x6B6C)),
        ]
        for (name, answered) in answers {
            let link = try #require(try socket.link(named: name), "\(name) exists")
            if Self.kernelEchoes {
                #expect(answered == link.index, "\(name): the echo carries the new link's index")
            } else {
                #expect(answered == nil || answered == link.index, "\(name): no echo before Linux 6.2")
            }
            #expect(link.group == 0x6B6C)
        }
        // What the group request deletes, and only that.
        try socket.deleteLinks(group: 0x6B6C)
        #expect(try socket.links().map(\.name).sorted() == ["eth0", "lo", "peer0"])
    }

    /// A creation the kernel refuses (the name is taken; the parent does not exist) throws with the
    /// kernel's errno and creates nothing; the next request on the same socket gets its own answer.
    @Test func aRefusedCreationReportsTheErrnoAndTheSocketGoesOn() throws {
        let namespace = try TestNamespace(prefix: "kl-echo")
        defer { namespace.destroy() }
        let (socket, eth0) = try Self.socket(in: namespace)
        let before = try socket.links()

        let taken = #expect(throws: NetlinkError.self) {
            try socket.addMacvlan(kind: .macvtap, name: "peer0", parentIndex: eth0, mac: nil, up: false, group: 0x6B6C)
        }
        #expect(taken?.errno == .fileExists, "\(String(describing: taken))")
        #expect(taken?.description.contains("add macvtap peer0 on link #\(eth0)") == true, "\(String(describing: taken))")
        let missingParent = #expect(throws: NetlinkError.self) {
            try socket.addMacvlan(kind: .macvlan, name: "kne-orphan", parentIndex: 99_999, mac: nil, up: false, group: 0x6B6C)
        }
        #expect(missingParent?.errno == .operationNotSupportedByDevice, "\(String(describing: missingParent))")
        #expect(try socket.links() == before, "nothing was created")

        let bridge = try socket.addBridge(name: "kne-br", mac: nil, group: 0x6B6C)
        let created = try #require(try socket.link(named: "kne-br"))
        if Self.kernelEchoes { #expect(bridge == created.index) }
        try socket.changeLink(index: created.index, up: true)
        #expect(try socket.link(index: created.index)?.isUp == true, "the socket still pairs each request with its answer")
    }
}

/// The descriptor table grown ahead of a launch's descriptors (`DescriptorTable`): the kernel's table
/// (`FDSize` in /proc/self/status) holds the reserved slots afterwards and nothing stays open.
@Suite struct DescriptorTableTests {
    static func tableSize() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("FDSize:") })
        return try #require(Int(line.dropFirst("FDSize:".count).trimmingCharacters(in: .whitespaces)))
    }

    @Test func reservingGrowsTheTableAndLeavesNothingOpen() throws {
        let before = try Self.tableSize()
        let wanted = before * 2 + 1
        #expect(DescriptorTable.reserve(slots: wanted))
        let after = try Self.tableSize()
        #expect(after >= wanted, "FDSize \(before) → \(after), wanted \(wanted)")
        // Other suites open descriptors meanwhile, at the lowest free numbers: the reserving copy sat at
        // `wanted - 1` or above, and none is left there.
        let open = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { Int($0) }
        #expect(!open.contains { $0 >= wanted - 1 }, "a descriptor stayed open where the reserving copy was: \(open.sorted().suffix(3))")
    }

    @Test func slotsCoverWhatALaunchOpens() {
        // Measured with one queue and no vhost-net: 18 descriptors for one interface, 397 for 64.
        #expect(DescriptorTable.slots(interfaces: 64, queues: 1) >= 397)
        #expect(DescriptorTable.slots(interfaces: 1, queues: 1) <= 64, "one interface needs no growth")
        #expect(DescriptorTable.slots(interfaces: 8, queues: 4) > DescriptorTable.slots(interfaces: 8, queues: 1))
    }
}
