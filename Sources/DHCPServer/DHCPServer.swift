#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Logging
import NetworkTypes
import SystemPackage
import Synchronization

/// Serves one ``DHCPLease`` on one interface until stopped.
///
/// Requests arrive as whole Ethernet frames on an AF_PACKET socket of the interface, so only
/// frames whose Ethernet source is the VM's MAC are answered (a UDP socket bound to port 67
/// holds the port); replies leave as hand-built frames through the same socket, so a client with
/// no address yet gets its unicast answer without ARP and without a route in the container.
/// Relayed requests (`giaddr` set) are never answered.
/// The sockets are created by `init` in the network namespace of the calling thread.
/// The receive loop blocks in the kernel on a dedicated thread; ``stop()`` wakes it.
package final class DHCPServer: Sendable {
    package let interfaceName: String
    package let lease: DHCPLease
    private let logic: DHCPResponderLogic
    private let sockets: DHCPSockets
    private let logger: Logger
    private let started = Atomic<Bool>(false)

    /// Opens the sockets on `interfaceName` in the current thread's network namespace.
    /// Throws when the lease does not fit DHCP options, the interface is missing, or port 67 is taken.
    package init(interfaceName: String, lease: DHCPLease, logger: Logger) throws(DHCPServerError) {
        do {
            try lease.validate()
        } catch {
            throw .invalidLease(error)
        }
        self.interfaceName = interfaceName
        self.lease = lease
        self.logic = DHCPResponderLogic(lease: lease)
        self.sockets = try DHCPSockets(interfaceName: interfaceName)
        var logger = logger
        logger[metadataKey: "interface"] = "\(interfaceName)"
        self.logger = logger
    }

    /// The interface's MAC address: the source of every reply frame.
    package var interfaceMAC: MACAddress { sockets.interfaceMAC }

    /// Serves until ``stop()`` is called or the task is cancelled. Throws ``DHCPServerError``
    /// when receiving fails; send failures are logged and the server keeps serving.
    /// A server runs once: a second call throws ``DHCPServerError/alreadyRunning(_:)``; to serve
    /// again, create a new server (it answers the same lease the same way).
    package func run() async throws {
        guard started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            throw DHCPServerError.alreadyRunning(interfaceName)
        }
        logger.info("DHCP server serving \(lease.address) to \(lease.clientMAC) as \(lease.serverIdentifier)")
        try await runOnDedicatedThread(named: "dhcp-\(interfaceName)", stop: { [self] in stop() }) { [self] in try serve() }
        logger.info("DHCP server stopped")
    }

    /// Stops a running server; called before ``run()``, makes it return at once. Safe from any thread.
    package func stop() {
        sockets.signalStop()
    }

    /// The receive loop; runs on the dedicated thread.
    private func serve() throws(DHCPServerError) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while let count = try sockets.waitForRequest(into: &buffer) {
            handle(frame: Array(buffer[..<count]))
        }
    }

    private func handle(frame: [UInt8]) {
        switch logic.process(frame: frame, serverMAC: sockets.interfaceMAC) {
        case .rejected(let rejection):
            logger.debug("ignoring frame: \(rejection)")
        case .packet(let outcome):
            handle(outcome)
        }
    }

    private func handle(_ outcome: DHCPPacketOutcome) {
        switch outcome {
        case .undecodable(let error):
            logger.debug("ignoring packet: \(error)")
        case .ignored(let request, let reason):
            if reason.isAddressConflict {
                logger.error("ADDRESS CONFLICT: \(reason); the VM will not use \(lease.address.address) — find the other host with that address on the link",
                             metadata: ["xid": "\(request.xid)"])
            } else {
                logger.debug("no reply to \(request.messageType.map { "\($0)" } ?? "BOOTP request"): \(reason)",
                             metadata: ["xid": "\(request.xid)"])
            }
        case .reply(let request, let reply, let transmission):
            let sender = request.ciaddr.isUnspecified ? "" : " from \(request.ciaddr)"
            let summary = "\(request.messageType.map { "\($0)" } ?? "?")\(sender) -> \(reply.message.messageType.map { "\($0)" } ?? "?") \(reply.message.yiaddr) via \(reply.destination)"
            do {
                switch transmission {
                case .frame(let frame): try sockets.send(frame: frame)
                }
                if reply.message.messageType == .nak {
                    logger.warning("\(summary)", metadata: ["xid": "\(request.xid)"])
                } else {
                    logger.info("\(summary)", metadata: ["xid": "\(request.xid)"])
                }
            } catch {
                logger.error("\(summary) failed: \(error)")
            }
        }
    }
}

/// Why the DHCP server could not start or stopped serving.
package enum DHCPServerError: Error, CustomStringConvertible {
    case invalidLease(DHCPLeaseError)
    case interfaceNotFound(String)
    case systemCall(String, interface: String?, errno: Errno)
    case alreadyRunning(String)

    package var description: String {
        switch self {
        case .invalidLease(let error):
            "cannot serve DHCP: \(error)"
        case .interfaceNotFound(let name):
            "DHCP server: no interface named \"\(name)\" in this network namespace; check the attach plan's container-side device"
        case .systemCall(let call, let interface, let code):
            "DHCP server\(interface.map { " on \($0)" } ?? ""): \(call) failed: \(code) (errno \(code.rawValue))\(Self.hint(code))"
        case .alreadyRunning(let name):
            "DHCP server on \(name) was already started; create a new DHCPServer to serve again"
        }
    }

    private static func hint(_ code: Errno) -> String {
        switch code {
        case .addressInUse: "; is another DHCP server (dnsmasq?) bound to port 67 on this interface?"
        case .notPermitted, .permissionDenied: "; the launcher needs CAP_NET_RAW and CAP_NET_BIND_SERVICE (run the container privileged)"
        default: ""
        }
    }
}
