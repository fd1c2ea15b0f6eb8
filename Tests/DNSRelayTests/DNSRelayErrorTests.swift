import DNSRelay
import Logging
import NetworkTypes
import SystemPackage
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A relay that cannot listen says which call failed, with the kernel's `Errno` and what to do. On
/// loopback of the test's own namespace; nothing is left listening.
@Suite struct DNSRelayErrorTests {
    static let logger = Logger(label: "errno-dns-relay-test")

    /// An address that is not on the interface: `bind` fails with EADDRNOTAVAIL.
    @Test func addressNotOnTheInterface() {
        let address = IPv4Address(192, 0, 2, 77)  // TEST-NET-1: on no interface here
        let configuration = DNSRelayConfiguration(listenAddress: address, port: 5353, upstreams: [IPv4Address(127, 0, 0, 11)],
                                                  clients: [IPv4Address(10, 42, 0, 7)])
        do {
            _ = try DNSRelay(interfaceName: "lo", configuration: configuration, logger: Self.logger)
            Issue.record("the relay listened on an address the interface does not have")
        } catch {
            guard case .systemCall(let call, let interface, let where_, let errno) = error else {
                Issue.record("not a system-call failure: \(error)")
                return
            }
            #expect(call == "bind" && interface == "lo" && where_ == "192.0.2.77:5353")
            #expect(errno == .addressNotAvailable)
            #expect(error.description == "DNS relay on lo (192.0.2.77:5353): bind failed: Cannot assign requested address (errno 99); the container-side address is not on the interface")
        }
    }

    /// A port another server holds: the TCP `bind` fails with EADDRINUSE, and the advice names the cause and the way out.
    @Test func portTaken() throws {
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #expect(holder >= 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr = in_addr(s_addr: UInt32(0x7F00_0001).bigEndian)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(holder, pointer, length) == 0 && listen(holder, 1) == 0 && getsockname(holder, pointer, &length) == 0
            }
        }
        guard bound else { throw FixtureFailure("cannot hold a loopback TCP port: errno \(Errno.current)") }
        let port = UInt16(bigEndian: address.sin_port)

        let configuration = DNSRelayConfiguration(listenAddress: IPv4Address(127, 0, 0, 1), port: port,
                                                  upstreams: [IPv4Address(127, 0, 0, 11)], clients: [IPv4Address(10, 42, 0, 7)])
        do {
            _ = try DNSRelay(interfaceName: "lo", configuration: configuration, logger: Self.logger)
            Issue.record("the relay listened on a TCP port another socket holds")
        } catch {
            guard case .systemCall("bind", "lo", "127.0.0.1:\(port)", let errno) = error else {
                Issue.record("not the bind failure: \(error)")
                return
            }
            #expect(errno == .addressInUse)
            #expect(error.description.hasSuffix("bind failed: Address already in use (errno 98); is another DNS server (dnsmasq?) listening on port 53 in the container? Set DNS_SERVERS to hand out name servers without the relay"))
        }
    }
}
