import Foundation
import NetworkTypes
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `InterfaceRequest` against the kernel: the name and the union land where the kernel reads them.
/// Read-only ioctls on this namespace's own interfaces; no privilege needed.
@Suite struct InterfaceRequestTests {
    private func withSocket<T>(_ body: (Int32) throws -> T) throws -> T {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0, "socket: \(String(cString: strerror(errno)))")
        defer { close(fd) }
        return try body(fd)
    }

    @Test func flagsOfLoopbackSayLoopback() throws {
        try withSocket { fd in
            var request = InterfaceRequest(name: "lo")
            #expect(request.perform(UInt(SIOCGIFFLAGS), on: fd) == 0)
            #expect(Int32(request.flags) & Int32(IFF_LOOPBACK) != 0)
        }
    }

    @Test func anUnknownNameFailsWithNoSuchDevice() throws {
        try withSocket { fd in
            var request = InterfaceRequest(name: "klnone\(getpid() % 100000)")
            let result = request.perform(UInt(SIOCGIFFLAGS), on: fd)
            let code = errno
            #expect(result == -1)
            #expect(code == ENODEV)
        }
    }

    @Test func hardwareAddressIsTheOneSysfsShows() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: "/sys/class/net").sorted()
        let withMAC = names.compactMap { name -> (String, String)? in
            guard let text = try? String(contentsOfFile: "/sys/class/net/\(name)/address", encoding: .utf8) else { return nil }
            let address = text.trimmingCharacters(in: .whitespacesAndNewlines)
            return address.count == 17 && address != "00:00:00:00:00:00" ? (name, address) : nil
        }
        let (name, address) = try #require(withMAC.first, "no interface with a MAC address in this namespace: \(names)")
        try withSocket { fd in
            var request = InterfaceRequest(name: name)
            #expect(request.perform(UInt(SIOCGIFHWADDR), on: fd) == 0)
            #expect(MACAddress(request.hardwareAddress).description == address)
        }
    }
}
