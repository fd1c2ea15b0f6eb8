import Foundation
import DHCPServer
import NetworkTypes
import Testing

@Suite struct ClasslessRouteEncodingTests {
    /// RFC 3442 section 1: width, then only the significant destination octets, then the router.
    @Test(arguments: [
        ("0.0.0.0/0", "10.0.0.1", [0, 10, 0, 0, 1]),
        ("10.0.0.0/8", "10.0.0.1", [8, 10, 10, 0, 0, 1]),
        ("10.17.0.0/16", "10.0.0.1", [16, 10, 17, 10, 0, 0, 1]),
        ("10.27.129.0/24", "10.0.0.1", [24, 10, 27, 129, 10, 0, 0, 1]),
        ("10.229.0.128/25", "10.0.0.1", [25, 10, 229, 0, 128, 10, 0, 0, 1]),
        ("10.198.122.47/32", "10.0.0.1", [32, 10, 198, 122, 47, 10, 0, 0, 1]),
        ("10.16.0.0/15", "10.0.0.1", [15, 10, 16, 10, 0, 0, 1]),
        ("169.254.1.1/32", "0.0.0.0", [32, 169, 254, 1, 1, 0, 0, 0, 0]),
    ] as [(String, String, [UInt8])])
    func compactsDestinationDescriptor(destination: String, gateway: String, expected: [UInt8]) {
        let route = DHCPStaticRoute(destination: cidr(destination), gateway: ip(gateway))
        #expect(ClasslessRouteEncoding.encode([route]) == expected)
        #expect(ClasslessRouteEncoding.decode(expected) == [route])
    }

    @Test func dropsHostBitsBeyondThePrefix() {
        let route = DHCPStaticRoute(destination: cidr("192.168.77.200/20"), gateway: ip("10.0.0.1"))
        #expect(ClasslessRouteEncoding.encode([route]) == [20, 192, 168, 64, 10, 0, 0, 1])
    }

    @Test func decodesSequencesAndRejectsBrokenOnes() {
        let routes = [DHCPStaticRoute(destination: cidr("10.0.0.0/8"), gateway: ip("1.2.3.4")),
                      DHCPStaticRoute(destination: cidr("0.0.0.0/0"), gateway: ip("5.6.7.8"))]
        let bytes = ClasslessRouteEncoding.encode(routes)
        #expect(ClasslessRouteEncoding.decode(bytes) == routes)
        #expect(ClasslessRouteEncoding.decode(Array(bytes.dropLast())) == nil)
        #expect(ClasslessRouteEncoding.decode([33, 1, 2, 3, 4, 5, 6, 7, 8]) == nil)
    }

    @Test func appendsDefaultRouteViaRouterWhenRoutesAreGiven() {
        var lease = Sample.lease
        #expect(lease.classlessRoutes == lease.staticRoutes + [DHCPStaticRoute(destination: cidr("0.0.0.0/0"), gateway: ip("10.42.0.1"))])
        lease.staticRoutes.append(DHCPStaticRoute(destination: cidr("0.0.0.0/0"), gateway: ip("10.42.0.2")))
        #expect(lease.classlessRoutes == lease.staticRoutes, "an explicit default route is not doubled")
        lease.staticRoutes = []
        #expect(lease.classlessRoutes.isEmpty, "no option 121 without static routes: option 3 suffices")
    }
}

@Suite struct DomainNameEncodingTests {
    /// The example of RFC 3397 section 2: the second name points back at "apple.com".
    @Test func compressesCommonSuffixesLikeRFC3397() {
        let bytes = DomainNameEncoding.encode(["eng.apple.com.", "marketing.apple.com."])
        var expected: [UInt8] = [3] + Array("eng".utf8) + [5] + Array("apple".utf8) + [3] + Array("com".utf8) + [0]
        expected += [9] + Array("marketing".utf8) + [0xC0, 0x04]
        #expect(bytes == expected)
        #expect(DomainNameEncoding.decode(bytes) == ["eng.apple.com", "marketing.apple.com"])
    }

    @Test func pointsAtWholeRepeatedNames() {
        let bytes = DomainNameEncoding.encode(["a.example", "a.example", "example"])
        #expect(bytes == [1, 0x61, 7] + Array("example".utf8) + [0, 0xC0, 0x00, 0xC0, 0x02])
        #expect(DomainNameEncoding.decode(bytes) == ["a.example", "a.example", "example"])
    }

    @Test func roundTripsKubernetesSearchList() {
        let names = ["default.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example.com"]
        let bytes = DomainNameEncoding.encode(names)
        #expect(bytes.count < names.reduce(0) { $0 + $1.utf8.count + 2 }, "compression saves bytes")
        #expect(DomainNameEncoding.decode(bytes) == names)
    }

    @Test(arguments: ["", ".", "a..b", String(repeating: "x", count: 64) + ".com", "has space.com",
                      Array(repeating: String(repeating: "y", count: 50), count: 6).joined(separator: ".")])
    func rejectsInvalidNames(_ name: String) {
        #expect(DomainNameEncoding.labels(of: name) == nil)
        #expect(DomainNameEncoding.encode([name]).isEmpty)
    }

    @Test func rejectsForwardAndLoopingPointers() {
        #expect(DomainNameEncoding.decode([0xC0, 0x00]) == nil)
        #expect(DomainNameEncoding.decode([1, 0x61, 0xC0, 0x04, 0]) == nil)
        #expect(DomainNameEncoding.decode([1, 0x61, 0xC0, 0x00]) == nil, "a self-including name overflows 255 bytes")
        #expect(DomainNameEncoding.decode([3, 0x61]) == nil)
        #expect(DomainNameEncoding.decode([0x40]) == nil)
    }
}

@Suite struct LeaseValidationTests {
    @Test func acceptsTheSampleLease() throws {
        try Sample.lease.validate()
    }

    @Test func rejectsFieldsThatDoNotFitOptions() {
        var lease = Sample.lease
        lease.mtu = 40
        #expect(throws: DHCPLeaseError.mtuOutOfRange(40)) { try lease.validate() }
        lease = Sample.lease
        lease.searchDomains = ["ok.example", "bad..example"]
        #expect(throws: DHCPLeaseError.invalidSearchDomain("bad..example")) { try lease.validate() }
        lease = Sample.lease
        lease.clientMAC = mac("ff:ff:ff:ff:ff:ff")
        #expect(throws: DHCPLeaseError.invalidClientMAC(lease.clientMAC)) { try lease.validate() }
        lease = Sample.lease
        lease.address = cidr("10.42.0.0/24")
        #expect(throws: DHCPLeaseError.unusableAddress(lease.address)) { try lease.validate() }
        lease.address = cidr("10.0.0.5/32")
        #expect(throws: Never.self) { try lease.validate() }
        lease.serverIdentifier = IPv4Address(0)
        #expect(throws: DHCPLeaseError.unspecifiedServerIdentifier) { try lease.validate() }
    }

    @Test func leaseRoundTripsThroughCodable() throws {
        let data = try JSONEncoder().encode(Sample.lease)
        #expect(try JSONDecoder().decode(DHCPLease.self, from: data) == Sample.lease)
    }
}
