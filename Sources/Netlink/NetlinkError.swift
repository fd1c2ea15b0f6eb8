import CNetlink

/// A netlink request the kernel (or libnl) refused.
///
/// The description names the operation and the object, then libnl's reason, so a log line
/// reads as "netlink: add macvtap kl-tap0 on eth0 failed: Object exists (code 6)".
public struct NetlinkError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What was being done, e.g. "add address 10.0.0.2/24 to eth0".
    public var operation: String
    /// The libnl error code (positive, `NLE_*`).
    public var code: Int32
    /// libnl's text for the code.
    public var reason: String

    public init(operation: String, code: Int32) {
        self.operation = operation
        self.code = abs(code)
        self.reason = String(cString: nl_geterror(code))
    }

    public init(operation: String, reason: String) {
        self.operation = operation
        self.code = 0
        self.reason = reason
    }

    public var description: String { "netlink: \(operation) failed: \(reason)" + (code != 0 ? " (code \(code))" : "") }

    /// libnl's `NLE_EXIST`: the object is already there.
    public var isExists: Bool { code == NLE_EXIST }
    /// libnl's `NLE_OBJ_NOTFOUND` / `NLE_NODEV` / `NLE_NOADDR`: the object is gone.
    public var isNotFound: Bool { code == NLE_OBJ_NOTFOUND || code == NLE_NODEV || code == NLE_NOADDR }
}

@inline(__always)
func check(_ result: Int32, _ operation: @autoclosure () -> String) throws(NetlinkError) {
    if result < 0 { throw NetlinkError(operation: operation(), code: result) }
}
