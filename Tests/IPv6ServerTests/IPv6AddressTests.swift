import NetworkTypes
import Testing

@Suite struct IPv6AddressTests {
    @Test(arguments: [
        ("fd00::1", "fd00::1"), ("FE80::ECEE:EEFF:FEEE:EEEE", "fe80::ecee:eeff:feee:eeee"), ("::", "::"), ("::1", "::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"), ("2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"),
        ("1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"), ("::ffff:10.0.0.1", "::ffff:a00:1"), ("1::", "1::"),
    ])
    func parsesAndPrintsRFC5952(text: String, printed: String) throws {
        let address = try #require(IPv6Address(text))
        #expect(address.description == printed)
        #expect(IPv6Address(printed) == address)
    }

    @Test(arguments: ["", ":", ":::", "1::2::3", "12345::", "g::1", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "fe80::1%eth0",
                      "[::1]", "::1.2.3", "1.2.3.4", " ::1", "1:2:3:4:5:6:7::8"])
    func rejectsMalformedText(text: String) {
        #expect(IPv6Address(text) == nil, "\(text) parsed")
    }

    @Test func eui64LinkLocalMatchesTheKernelsAndCalicosGateway() {
        #expect(IPv6Address.linkLocal(eui64: MACAddress("ee:ee:ee:ee:ee:ee")!).description == "fe80::ecee:eeff:feee:eeee")
        #expect(IPv6Address.linkLocal(eui64: MACAddress("52:54:00:12:34:56")!).description == "fe80::5054:ff:fe12:3456")
    }

    @Test func classifiesAddresses() {
        #expect(IPv6Address("fe80::1")!.isLinkLocal && !IPv6Address("fe80::1")!.isGlobalUnicast)
        #expect(IPv6Address("fd00::5")!.isGlobalUnicast && IPv6Address("2001:db8::5")!.isGlobalUnicast)
        #expect(!IPv6Address("ff02::1")!.isGlobalUnicast && IPv6Address("ff02::1")!.isMulticast)
        #expect(!IPv6Address("::1")!.isGlobalUnicast && !IPv6Address("::")!.isGlobalUnicast)
        #expect(!IPv6Address("::ffff:1.2.3.4")!.isGlobalUnicast)
        #expect(IPv6Address.allDHCPServersAndRelays.multicastMAC.description == "33:33:00:01:00:02")
    }

    @Test func interfacesHaveNetworkAndContainment() throws {
        let net = try #require(IPv6Interface("fd00:1:2:3:4:5:6:7/64"))
        #expect(net.network.description == "fd00:1:2:3::")
        #expect(net.contains(IPv6Address("fd00:1:2:3::99")!) && !net.contains(IPv6Address("fd00:1:2:4::1")!))
        #expect(IPv6Interface("fd00::1/61")!.network == IPv6Address("fd00::")!)
        #expect(IPv6Interface("fd00:0:0:f::1/61")!.network.description == "fd00:0:0:8::")
        for bad in ["fd00::1", "fd00::1/129", "fd00::1/064", "fd00::1/", "10.0.0.1/24", "fd00::1/-1"] {
            #expect(IPv6Interface(bad) == nil, "\(bad) parsed")
        }
    }
}
