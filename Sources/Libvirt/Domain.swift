import CLibvirt

#if canImport(Glibc)
import Glibc
#endif

/// A libvirt domain (`virDomainPtr`).
package final class Domain: @unchecked Sendable {  // the pointer is libvirt's thread-safe object
    let pointer: OpaquePointer
    /// Kept so the connection outlives its domains.
    package let connection: Connection

    init(pointer: OpaquePointer, connection: Connection) {
        self.pointer = pointer
        self.connection = connection
    }

    deinit { virDomainFree(pointer) }

    /// The domain's name.
    package var name: String { virDomainGetName(pointer).map { String(cString: $0) } ?? "" }

    /// The domain's state (`virDomainGetState`).
    package func state() throws(LibvirtError) -> DomainState {
        try stateAndReason().state
    }

    /// The domain's state and libvirt's reason code for it (e.g. `VIR_DOMAIN_SHUTOFF_SHUTDOWN`).
    package func stateAndReason() throws(LibvirtError) -> (state: DomainState, reason: Int32) {
        var state: Int32 = 0
        var reason: Int32 = 0
        guard virDomainGetState(pointer, &state, &reason, 0) == 0 else { throw LibvirtError.last("virDomainGetState") }
        return (DomainState(rawValue: state) ?? .unknown, reason)
    }

    /// Presses the guest's ACPI power button (`virDomainShutdownFlags(ACPI_POWER_BTN)`).
    package func pressPowerButton() throws(LibvirtError) {
        guard virDomainShutdownFlags(pointer, UInt32(VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN.rawValue)) == 0 else {
            throw LibvirtError.last("virDomainShutdownFlags")
        }
    }

    /// Stops the domain at once (`virDomainDestroy`): QEMU is killed.
    package func destroy() throws(LibvirtError) {
        guard virDomainDestroy(pointer) == 0 else { throw LibvirtError.last("virDomainDestroy") }
    }

    /// The live domain XML (`virDomainGetXMLDesc`).
    package func xml() throws(LibvirtError) -> String {
        guard let text = virDomainGetXMLDesc(pointer, 0) else { throw LibvirtError.last("virDomainGetXMLDesc") }
        defer { free(text) }
        return String(cString: text)
    }

    /// Connects `stream` to the domain's first serial console (`virDomainOpenConsole`, forcing
    /// away another client such as a `virsh console`).
    package func openConsole(_ stream: Stream) throws(LibvirtError) {
        guard virDomainOpenConsole(pointer, nil, stream.pointer, UInt32(VIR_DOMAIN_CONSOLE_FORCE.rawValue)) == 0 else {
            throw LibvirtError.last("virDomainOpenConsole")
        }
    }
}

/// `virDomainState`.
package enum DomainState: Int32, Sendable, CustomStringConvertible {
    case noState = 0, running, blocked, paused, shutdown, shutOff, crashed, pmSuspended
    case unknown = -1

    package var description: String {
        switch self {
        case .noState: "no state"
        case .running: "running"
        case .blocked: "blocked"
        case .paused: "paused"
        case .shutdown: "shutting down"
        case .shutOff: "shut off"
        case .crashed: "crashed"
        case .pmSuspended: "suspended"
        case .unknown: "unknown"
        }
    }
}

/// A data stream (`virStreamPtr`), e.g. a console. Blocking: ``receive(into:)`` waits for data.
package final class Stream: @unchecked Sendable {  // the pointer is libvirt's thread-safe object
    let pointer: OpaquePointer

    init(pointer: OpaquePointer) { self.pointer = pointer }

    deinit { virStreamFree(pointer) }

    /// Reads up to `buffer.count` bytes; 0 at the end of the stream.
    package func receive(into buffer: UnsafeMutableRawBufferPointer) throws(LibvirtError) -> Int {
        let count = virStreamRecv(pointer, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), buffer.count)
        guard count >= 0 else { throw LibvirtError.last("virStreamRecv") }
        return Int(count)
    }

    /// Writes all of `bytes`.
    package func send(_ bytes: UnsafeRawBufferPointer) throws(LibvirtError) {
        var offset = 0
        while offset < bytes.count {
            let count = virStreamSend(pointer, bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: CChar.self), bytes.count - offset)
            guard count >= 0 else { throw LibvirtError.last("virStreamSend") }
            offset += Int(count)
        }
    }

    /// Ends the stream abruptly (`virStreamAbort`); a blocked ``receive(into:)`` returns.
    package func abort() { _ = virStreamAbort(pointer) }
}
