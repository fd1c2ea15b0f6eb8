import InMemoryNetlink
import LaunchConfiguration
import NetAttach
import Netlink
import Testing

/// Issue 15 items 2 and 3: the attach takes a new link's index from the kernel's answer to the creating
/// request (no lookup), falls back to a lookup when the kernel gives none (before Linux 6.2), and the
/// teardown asks once which of its links outlived the group deletion instead of once per link.
@Suite struct NetlinkRoundTripTests {
    private func isLookUp(_ call: InMemoryNamespace.Call) -> Bool {
        if case .linkNamed = call { true } else { false }
    }

    /// With the echo, only the TAP (made through /dev/net/tun, not netlink) is looked up.
    @Test(arguments: modes)
    func theAttachUsesTheIndexesTheKernelAnswered(_ mode: LaunchConfiguration.NetworkMode) throws {
        let namespace = try ContainerShape.twoInterfaces.namespace()
        let start = namespace.copy()
        let plan = try makeAttachPlan(for: namespace, shape: .twoInterfaces, mode: mode)
        let before = namespace.calls.count
        let attacher = attacher(namespace)
        _ = try attacher.apply(plan)
        let lookUps = namespace.calls.dropFirst(before).filter(isLookUp)
        let expected: [InMemoryNamespace.Call] = mode == .bridge ? plan.interfaces.map { .linkNamed($0.vmLinkName) } : []
        #expect(lookUps == expected)
        #expect(attacher.teardown().isEmpty)
        expectPristine(namespace, like: start, "after teardown")
    }

    /// A kernel that does not echo: the attach looks each new link up by name and ends the same.
    @Test(arguments: modes)
    func withoutTheEchoTheAttachLooksTheLinksUp(_ mode: LaunchConfiguration.NetworkMode) throws {
        let echoed = try ContainerShape.twoInterfaces.namespace()
        let silent = try ContainerShape.twoInterfaces.namespace()
        silent.echoesNewLinks = false
        let start = silent.copy()
        let plan = try makeAttachPlan(for: silent, shape: .twoInterfaces, mode: mode)
        let before = silent.calls.count
        let attacher = attacher(silent)
        _ = try attacher.apply(plan)
        _ = try NetAttachTests.attacher(echoed).apply(plan)
        let looked = silent.calls.dropFirst(before).compactMap { call -> String? in if case .linkNamed(let name) = call { name } else { nil } }
        var expected: [String] = []
        for interface in plan.interfaces {
            expected += mode == .macvtap ? [interface.vmLinkName, interface.containerSideName] : [interface.containerSideName, interface.vmLinkName]
        }
        #expect(looked == expected, "each created link is looked up once, in step order")
        // The container sides' MACs are random: everything else is the same either way.
        let shape = { (namespace: InMemoryNamespace) in
            namespace.network.links.map { "\($0.index) \($0.name) \($0.kind) up \($0.isUp) master \($0.masterIndex ?? 0) alias \($0.alias ?? "-")" }
        }
        #expect(shape(silent) == shape(echoed))
        #expect(silent.network.addresses == echoed.network.addresses)
        #expect(attacher.teardown().isEmpty)
        expectPristine(silent, like: start, "after teardown")
    }

    /// The two-interface container as it starts, attached in `mode`, and the call count then.
    private func attachedTwoInterfaces(_ mode: LaunchConfiguration.NetworkMode) throws -> (InMemoryNamespace, start: InMemoryNamespace, Attacher, calls: Int) {
        let namespace = try ContainerShape.twoInterfaces.namespace()
        let start = namespace.copy()
        let attacher = NetAttachTests.attacher(namespace)
        _ = try attacher.apply(try makeAttachPlan(for: namespace, shape: .twoInterfaces, mode: mode))
        return (namespace, start, attacher, namespace.calls.count)
    }

    /// After the group request the teardown dumps the links once; it looks none up by name.
    @Test(arguments: modes)
    func theTeardownAsksOnceWhichLinksAreLeft(_ mode: LaunchConfiguration.NetworkMode) throws {
        let (namespace, start, attacher, before) = try attachedTwoInterfaces(mode)
        #expect(attacher.teardown().isEmpty)
        let calls = Array(namespace.calls.dropFirst(before))
        #expect(!calls.contains(where: isLookUp), "no link looked up by name: \(calls)")
        #expect(calls.filter { $0 == .links }.count == 1)
        expectPristine(namespace, like: start, "after teardown")
    }

    /// The dump fails: the teardown falls back to one lookup per link, reports nothing, restores all.
    @Test(arguments: modes)
    func aFailedDumpFallsBackToLookups(_ mode: LaunchConfiguration.NetworkMode) throws {
        let (namespace, start, attacher, before) = try attachedTwoInterfaces(mode)
        namespace.failure = { _, call in call == .links ? .noBufferSpace : nil }
        #expect(attacher.teardown().isEmpty)
        namespace.failure = nil
        let calls = Array(namespace.calls.dropFirst(before))
        #expect(calls.contains(.links), "the dump was tried")
        // Macvtap: a macvtap and a macvlan per interface; bridge: the bridge (a TAP goes with its descriptor).
        #expect(calls.filter(isLookUp).count == (mode == .macvtap ? 4 : 2), "then each link was looked up: \(calls)")
        expectPristine(namespace, like: start, "after teardown")
    }
}
