#if canImport(Glibc)
import Glibc
#endif

/// A `struct ifreq` and the ioctl it goes to: the one way kvm-launch names an interface to the
/// kernel by ioctl (`SIOCGIFHWADDR`, `TUNSETIFF`). Kept as the struct's bytes, so that a module
/// that also sees `<linux/if.h>`'s `struct ifreq` (Netlink, through libnl) can use it: the two C
/// definitions of `ifreq` clash in Swift.
package struct InterfaceRequest {
    private var bytes: [UInt8]

    /// A request naming `name` (cut to `IFNAMSIZ - 1` bytes, zero-terminated), every other byte zero.
    package init(name: String) {
        bytes = [UInt8](repeating: 0, count: MemoryLayout<ifreq>.size)
        for (offset, byte) in name.utf8.prefix(Int(IFNAMSIZ) - 1).enumerated() { bytes[offset] = byte }
    }

    /// Where the union (`ifr_flags`, `ifr_hwaddr`, …) starts.
    private static let unionOffset = MemoryLayout<ifreq>.offset(of: \ifreq.ifr_ifru)!

    /// `ifr_flags` (e.g. `IFF_TAP | IFF_NO_PI` for `TUNSETIFF`).
    package var flags: Int16 {
        get { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: Self.unionOffset, as: Int16.self) } }
        set { bytes.withUnsafeMutableBytes { $0.storeBytes(of: newValue, toByteOffset: Self.unionOffset, as: Int16.self) } }
    }

    /// The first six bytes of `ifr_hwaddr.sa_data`: an Ethernet interface's MAC after `SIOCGIFHWADDR`.
    package var hardwareAddress: [UInt8] {
        let start = Self.unionOffset + MemoryLayout<sockaddr>.offset(of: \sockaddr.sa_data)!
        return Array(bytes[start..<start + 6])
    }

    /// `ioctl(descriptor, request, &ifreq)`: its result (-1 with `errno` set on failure).
    package mutating func perform(_ request: UInt, on descriptor: Int32) -> Int32 {
        bytes.withUnsafeMutableBytes { ioctl(descriptor, request, $0.baseAddress!) }
    }
}
