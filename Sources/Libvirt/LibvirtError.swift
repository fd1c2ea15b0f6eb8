import CLibvirt

/// A libvirt call failed. Carries libvirt's own message (`virGetLastError`) and the call that
/// failed, so the one line the user sees says what libvirt said.
package struct LibvirtError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The libvirt function that failed, e.g. `virDomainCreateXML`.
    package var operation: String
    /// libvirt's message, e.g. `unsupported configuration: ...`; empty when libvirt gave none.
    package var message: String
    /// libvirt's error code (`virErrorNumber`), 0 when unknown.
    package var code: Int32

    package init(operation: String, message: String, code: Int32 = 0) {
        self.operation = operation
        self.message = message
        self.code = code
    }

    /// The error libvirt recorded for this thread's last failed call.
    static func last(_ operation: String) -> LibvirtError {
        guard let error = virGetLastError() else {
            return LibvirtError(operation: operation, message: "no reason given")
        }
        let message = error.pointee.message.map { String(cString: $0) } ?? "no reason given"
        return LibvirtError(operation: operation, message: message, code: error.pointee.code)
    }

    /// `VIR_ERR_NO_DOMAIN`: the domain does not exist (any more).
    package var isNoDomain: Bool { code == Int32(VIR_ERR_NO_DOMAIN.rawValue) }

    package var description: String { "\(operation): \(message)" }
}
