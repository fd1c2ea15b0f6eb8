import IPv6Server
import Logging
import SystemPackage
import TestSupport
import Testing

/// An IPv6 responder that cannot open its packet socket says so with the kernel's `Errno` and what to
/// do: started on a thread without CAP_NET_RAW, as in an unprivileged container.
@Suite struct IPv6ServerErrorTests {
    @Test func withoutNetRawThePacketSocketIsRefused() async throws {
        let error = try await failure(withoutCapabilities: [capabilityNetRaw]) { () throws(IPv6ServerError) in
            _ = try IPv6Server(interfaceName: "lo", lease: Sample.lease, logger: Logger(label: "errno-ipv6-test"))
        }
        guard case .systemCall(let call, let interface, let errno) = error else {
            Issue.record("not a system-call failure: \(String(describing: error))")
            return
        }
        #expect(call == "socket(AF_PACKET, SOCK_RAW)" && interface == "lo" && errno == .notPermitted)
        #expect(error?.description == "IPv6 server on lo: socket(AF_PACKET, SOCK_RAW) failed: Operation not permitted (errno 1); the launcher needs CAP_NET_RAW (run the container privileged)")
    }
}
