/// Where a QMP socket is: a file-system path, or (written `@NAME`) a Linux abstract unix socket.
///
/// An abstract socket has no file: its name lives in the network namespace of whoever binds it,
/// so a QEMU in one container cannot be reached (or replaced) from another container's network
/// namespace, and nothing is left behind when QEMU dies. `@` is how `ss` and `/proc/net/unix`
/// show such names.
package struct QMPAddress: Sendable, Equatable, CustomStringConvertible {
    /// The path, or the abstract name without its `@`.
    package var name: String
    package var isAbstract: Bool

    /// The longest name `sockaddr_un` holds: 108 bytes less the terminating (path) or leading (abstract) NUL.
    package static let maximumLength = 107

    /// Reads `@NAME` as abstract and anything else as a path.
    package init(_ text: String) {
        if text.hasPrefix("@") {
            name = String(text.dropFirst())
            isAbstract = true
        } else {
            name = text
            isAbstract = false
        }
    }

    package static func abstract(_ name: String) -> QMPAddress { QMPAddress("@" + name) }

    /// `@NAME` or the path: the form ``init(_:)`` reads back.
    package var description: String { isAbstract ? "@" + name : name }

    /// The `sun_path` bytes and the address length to pass to bind/connect. An abstract name is
    /// passed without padding (QEMU's `tight=on` default), so both sides name the same socket.
    func socketAddressBytes() -> (path: [UInt8], length: Int) {
        let offset = 2  // offsetof(struct sockaddr_un, sun_path): sa_family_t
        if isAbstract {
            let bytes = [0] + Array(name.utf8)
            return (bytes, offset + bytes.count)
        }
        let bytes = Array(name.utf8) + [0]
        return (bytes, offset + bytes.count)
    }
}
