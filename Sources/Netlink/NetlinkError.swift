import CNetlink
import SystemPackage

/// A netlink request the kernel (or libnl) refused.
///
/// It keeps what it is made of — the operation, libnl's code and, when the kernel answered with
/// one, the errno — and renders text only when printed: "netlink: add macvtap kltap5 on link #5
/// failed: Object exists (EEXIST)".
package struct NetlinkError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What was being done, e.g. "add address 10.0.0.2/24 to link #5".
    package var operation: String
    /// The libnl error code (positive, `NLE_*`); 0 when the error did not come from libnl.
    package var code: Int32
    /// The kernel's errno from its `NLMSG_ERROR` answer, when there was one.
    package var errno: Errno?
    /// Text for an error that has neither a libnl code nor an errno (a vanished link, out of memory).
    package var reason: String?

    /// A libnl return code, with the errno the kernel answered (if any).
    package init(operation: String, code: Int32, errno: Errno? = nil) {
        self.operation = operation
        self.code = abs(code)
        self.errno = errno
    }

    /// An errno the kernel answered (or a model of the kernel refuses with); the libnl code is derived as libnl does.
    package init(operation: String, errno: Errno) {
        self.operation = operation
        self.code = nl_syserr2nlerr(errno.rawValue)
        self.errno = errno
    }

    /// A failure that is neither libnl's nor the kernel's.
    package init(operation: String, reason: String) {
        self.operation = operation
        self.code = 0
        self.reason = reason
    }

    package var description: String {
        var text = "netlink: \(operation) failed: "
        if let errno {
            text += "\(errno.description) (\(Self.errnoName(errno)))"
        } else if code != 0 {
            text += "\(String(cString: nl_geterror(code))) (libnl code \(code))"
        } else {
            text += reason ?? "unknown error"
        }
        return text
    }

    /// The object is already there (`EEXIST`, `EADDRINUSE`).
    package var isExists: Bool { code == NLE_EXIST }
    /// The object is gone (`ESRCH`, `ENODEV`, `EADDRNOTAVAIL`, …).
    package var isNotFound: Bool { code == NLE_OBJ_NOTFOUND || code == NLE_NODEV || code == NLE_NOADDR }

    /// The C name of an errno ("EEXIST"), for messages.
    package static func errnoName(_ errno: Errno) -> String {
        switch errno {
        case .fileExists: "EEXIST"
        case .addressInUse: "EADDRINUSE"
        case .noSuchProcess: "ESRCH"
        case .operationNotSupportedByDevice: "ENODEV"
        case .addressNotAvailable: "EADDRNOTAVAIL"
        case .invalidArgument: "EINVAL"
        case .networkUnreachable: "ENETUNREACH"
        case .networkDown: "ENETDOWN"
        case .resourceBusy: "EBUSY"
        case .notPermitted: "EPERM"
        case .notSupportedOnSocket: "EOPNOTSUPP"
        case .outOfRange: "ERANGE"
        case .noSuchFileOrDirectory: "ENOENT"
        default: "errno \(errno.rawValue)"
        }
    }
}
