#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import DHCPServer
import Logging
import NetworkTypes
import SystemPackage
import Synchronization

/// Serves one ``IPv6Lease`` on one interface until stopped: Router Advertisements (answering
/// Router Solicitations, three at start 4 s apart, then every 66–200 s) and DHCPv6.
///
/// Everything goes through one AF_PACKET socket on the container-side device, so the container
/// needs no IPv6 address, route or neighbour entry for the VM. The socket is created by `init` in
/// the network namespace of the calling thread; the receive loop runs on a dedicated thread.
package final class IPv6Server: Sendable {
    package let interfaceName: String
    package let lease: IPv6Lease
    private let logic: IPv6ResponderLogic
    private let sockets: IPv6Sockets
    private let logger: Logger
    private let started = Atomic<Bool>(false)

    /// Opens the socket on `interfaceName` in the current thread's network namespace.
    package init(interfaceName: String, lease: IPv6Lease, logger: Logger) throws(IPv6ServerError) {
        do {
            try lease.validate()
        } catch {
            throw .invalidLease(error)
        }
        self.interfaceName = interfaceName
        self.lease = lease
        logic = IPv6ResponderLogic(lease: lease)
        sockets = try IPv6Sockets(interfaceName: interfaceName)
        var logger = logger
        logger[metadataKey: "interface"] = "\(interfaceName)"
        self.logger = logger
    }

    /// The interface's MAC: the Ethernet source of every frame sent.
    package var interfaceMAC: MACAddress { sockets.interfaceMAC }

    /// Serves until ``stop()`` or cancellation; runs once (a second call throws ``IPv6ServerError/alreadyRunning(_:)``).
    package func run() async throws {
        guard started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            throw IPv6ServerError.alreadyRunning(interfaceName)
        }
        logger.info("IPv6 server: \(lease.addresses.map(\.description).joined(separator: ", ")) to \(lease.clientMAC), router \(lease.router.map { "\($0)" } ?? "none")")
        try await runOnDedicatedThread(named: "ipv6-\(interfaceName)", stop: { [self] in stop() }) { [self] in try serve() }
        logger.info("IPv6 server stopped")
    }

    /// Stops a running server; called before ``run()``, makes it return at once.
    package func stop() { sockets.signalStop() }

    private func serve() throws(IPv6ServerError) {
        var buffer = [UInt8](repeating: 0, count: 2048)
        var schedule = AdvertisementSchedule()
        var next = ContinuousClock.now
        while true {
            let now = ContinuousClock.now
            if now >= next {
                send(logic.unsolicitedAdvertisement(serverMAC: sockets.interfaceMAC), summary: "periodic ROUTER-ADVERTISEMENT", level: .debug)
                next = now + schedule.nextInterval()
            }
            let wait = next - now
            let milliseconds = Int32(clamping: wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000 + 1)
            switch try sockets.wait(into: &buffer, timeoutMilliseconds: milliseconds) {
            case .stopped: return
            case .timeout: continue
            case .frame(let count, let unverifiable): handle(buffer[..<count], checksumUnverifiable: unverifiable)
            }
        }
    }

    private func handle(_ frame: ArraySlice<UInt8>, checksumUnverifiable: Bool) {
        switch logic.process(frame: frame, serverMAC: sockets.interfaceMAC, checksumUnverifiable: checksumUnverifiable) {
        case .notForUs:
            return
        case .ignored(let reason):
            logger.debug("no IPv6 reply: \(reason)")
        case .reply(let summary, let out):
            if let udp = IPv6Frame.parse(frame)?.udp, let request = try? DHCPv6Message(decoding: udp.payload) {
                let declined = IPv6ResponderLogic.declinedAddresses(in: request)
                if !declined.isEmpty {
                    logger.error("ADDRESS CONFLICT: the VM DECLINED \(declined.map(\.description).joined(separator: ", ")): another host on the link uses it")
                }
            }
            send(out, summary: summary, level: .info)
        }
    }

    private func send(_ frame: [UInt8], summary: String, level: Logger.Level) {
        do {
            try sockets.send(frame: frame)
            logger.log(level: level, "\(summary)")
        } catch {
            logger.error("\(summary) failed: \(error)")
        }
    }
}

/// When advertisements go out unsolicited (RFC 4861 section 6.2.4): three 4 s apart at start,
/// then uniformly between MinRtrAdvInterval (66 s) and MaxRtrAdvInterval (200 s).
struct AdvertisementSchedule {
    static let initialCount = 3
    static let initialInterval: Duration = .seconds(4)
    static let minimumInterval = 66
    static let maximumInterval = 200
    private var sent = 0

    mutating func nextInterval() -> Duration {
        sent += 1
        if sent < Self.initialCount { return Self.initialInterval }
        return .seconds(Int.random(in: Self.minimumInterval...Self.maximumInterval))
    }
}

/// Why the IPv6 server could not start or stopped serving.
package enum IPv6ServerError: Error, CustomStringConvertible {
    case invalidLease(IPv6LeaseError)
    case interfaceNotFound(String)
    case systemCall(String, interface: String?, errno: Errno)
    case alreadyRunning(String)

    package var description: String {
        switch self {
        case .invalidLease(let error): "cannot serve IPv6: \(error)"
        case .interfaceNotFound(let name):
            "IPv6 server: no interface named \"\(name)\" in this network namespace; check the attach plan's container-side device"
        case .systemCall(let call, let interface, let code):
            "IPv6 server\(interface.map { " on \($0)" } ?? ""): \(call) failed: \(code) (errno \(code.rawValue))"
                + (code == .notPermitted || code == .permissionDenied ? "; the launcher needs CAP_NET_RAW (run the container privileged)" : "")
        case .alreadyRunning(let name): "IPv6 server on \(name) was already started; create a new IPv6Server to serve again"
        }
    }
}
