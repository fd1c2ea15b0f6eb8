import NetworkTypes

extension IPv6Sockets: LinkFrameChannel {
    func receive(timeoutMilliseconds: Int32) throws(IPv6ServerError) -> (frame: [UInt8], checksumUnverifiable: Bool)? {
        var buffer = [UInt8](repeating: 0, count: 2048)
        switch try wait(into: &buffer, timeoutMilliseconds: timeoutMilliseconds) {
        case .frame(let count, let unverifiable): return (Array(buffer.prefix(count)), unverifiable)
        case .timeout, .stopped: return nil
        }
    }
}

/// The OS side of ``GatewayLinkLocalDiscovery``: one AF_PACKET socket on the container interface
/// (every protocol, so a bridge port left by a killed launcher sees its answers too; no multicast
/// group joined, nothing configured), open only while it asks (closed on a thread of its own, so the
/// kernel's grace period for it is not waited for). Blocks the calling thread for at most twice the
/// schedule's stage time.
package enum GatewayProbe {
    /// Learns the link-local address of `gateway` (a global address on `interfaceName`'s link),
    /// asking from `localLinkLocal` (a link-local address of the interface; nil: fe80::EUI-64 of its
    /// MAC, which the gateway learns from our solicitation's link-layer option).
    /// Runs in the calling thread's network namespace; needs CAP_NET_RAW.
    package static func discover(
        gateway: IPv6Address, interfaceName: String, localLinkLocal: IPv6Address?,
        schedule: GatewayDiscoverySchedule = GatewayDiscoverySchedule()
    ) throws(GatewayDiscoveryError) -> GatewayLinkLocal {
        let sockets = try openSocket(interfaceName)
        let discovery = GatewayLinkLocalDiscovery(
            gateway: gateway, localMAC: sockets.interfaceMAC,
            localLinkLocal: localLinkLocal ?? .linkLocal(eui64: sockets.interfaceMAC),
            identifier: UInt16.random(in: 1...UInt16.max))
        let result = Result { () throws(GatewayDiscoveryError) in try GatewayDiscoveryRun.discover(discovery, over: sockets, schedule: schedule) }
        sockets.closeInBackground()
        return try result.get()
    }

    private static func openSocket(_ interfaceName: String) throws(GatewayDiscoveryError) -> IPv6Sockets {
        do throws(IPv6ServerError) {
            return try IPv6Sockets(interfaceName: interfaceName, groups: [], everyProtocol: true)
        } catch {
            throw .socket(error)
        }
    }
}
