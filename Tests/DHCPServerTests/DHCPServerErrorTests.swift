import DHCPServer
import Foundation
import Logging
import SystemPackage
import TestSupport
import Testing

/// A DHCP server that cannot open its sockets says which call failed, with the kernel's `Errno` and what
/// to do. The failure is made real: the server starts on a thread without the capabilities it needs, as
/// in an unprivileged container. Nothing is left bound.
@Suite struct DHCPServerErrorTests {
    @Test func withoutCapabilitiesTheCallFailsWithItsErrno() async throws {
        let error = try await failure(withoutCapabilities: [capabilityNetBindService, capabilityNetRaw]) { () throws(DHCPServerError) in
            _ = try DHCPServer(interfaceName: "lo", lease: Sample.lease, logger: Logger(label: "errno-dhcp-test"))
        }
        guard case .systemCall(let call, let interface, let errno) = error else {
            Issue.record("not a system-call failure: \(String(describing: error))")
            return
        }
        #expect(interface == "lo")
        // Port 67 is privileged unless the namespace lowered ip_unprivileged_port_start (Docker sets 0):
        // then bind succeeds and the packet socket, which needs CAP_NET_RAW, is refused.
        let firstUnprivileged = Int((try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_unprivileged_port_start", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "1024") ?? 1024
        if firstUnprivileged > 67 {
            #expect(call == "bind(0.0.0.0:67)" && errno == .permissionDenied)
            #expect(error?.description == "DHCP server on lo: bind(0.0.0.0:67) failed: Permission denied (errno 13); the launcher needs CAP_NET_RAW and CAP_NET_BIND_SERVICE (run the container privileged)")
        } else {
            #expect(call == "socket(AF_PACKET, SOCK_RAW)" && errno == .notPermitted)
            #expect(error?.description.hasSuffix("(errno 1); the launcher needs CAP_NET_RAW and CAP_NET_BIND_SERVICE (run the container privileged)") == true)
        }
    }
}
