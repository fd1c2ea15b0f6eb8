import Testing
import NetworkTypes

@Suite struct IPv4AddressTests {
    @Test(arguments: ["10.0.0.1", "255.255.255.255", "0.0.0.0", "192.168.1.200", "1.20.0.9"])
    func roundTrips(_ text: String) throws {
        let address = try #require(IPv4Address(text))
        #expect(address.description == text)
    }

    @Test(arguments: ["", "10.0.0", "10.0.0.1.2", "256.0.0.1", "010.0.0.1", "a.b.c.d", "1..2.3", "-1.0.0.0", " 1.2.3.4",
                      "1.2.3.4.", ".1.2.3", "1.2.3.00", "1.2.3.0001", "1.2.3.+1", "1.2.3.٣", "1.2.3.4\n", "1.2.3.256", "999.1.1.1"])
    func rejectsMalformed(_ text: String) {
        #expect(IPv4Address(text) == nil)
    }

    @Test func classifiesSpecialRanges() throws {
        #expect(try #require(IPv4Address("127.0.0.11")).isLoopback)
        #expect(try #require(IPv4Address("169.254.1.1")).isLinkLocal)
        #expect(!(try #require(IPv4Address("10.0.0.1")).isLoopback))
    }

    @Test func interfaceArithmetic() throws {
        let iface = try #require(IPv4Interface("10.42.3.7/16"))
        #expect(iface.netmask.description == "255.255.0.0")
        #expect(iface.network.description == "10.42.0.0")
        #expect(iface.broadcast.description == "10.42.255.255")
        #expect(iface.contains(try #require(IPv4Address("10.42.200.1"))))
        #expect(!iface.contains(try #require(IPv4Address("10.43.0.1"))))
        #expect(try #require(IPv4Interface("1.2.3.4/0")).netmask.value == 0)
        #expect(try #require(IPv4Interface("1.2.3.4/32")).netmask.value == UInt32.max)
    }

    @Test(arguments: ["10.0.0.1", "10.0.0.1/33", "10.0.0.1/", "/24", "10.0.0.1/024", "10.0.0.1/2a"])
    func interfaceRejectsMalformed(_ text: String) {
        #expect(IPv4Interface(text) == nil)
    }
}

@Suite struct MACAddressTests {
    @Test func parsesAndPrints() throws {
        let mac = try #require(MACAddress("02:AB:cd:00:11:ff"))
        #expect(mac.description == "02:ab:cd:00:11:ff")
        #expect(mac.isLocallyAdministered)
        #expect(!mac.isMulticast)
        #expect(MACAddress("02-ab-cd-00-11-ff") == mac)
    }

    @Test(arguments: ["", "02:ab:cd:00:11", "02:ab:cd:00:11:ff:00", "0g:00:00:00:00:00", "2:ab:cd:00:11:ff"])
    func rejectsMalformed(_ text: String) {
        #expect(MACAddress(text) == nil)
    }

    @Test func randomLocalIsLocalUnicast() {
        for _ in 0..<200 {
            let mac = MACAddress.randomLocal()
            #expect(mac.isLocallyAdministered)
            #expect(!mac.isMulticast)
        }
    }
}
