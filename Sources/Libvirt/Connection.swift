import CLibvirt
import NetworkTypes
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// An open libvirt connection (`virConnectPtr`). libvirt's objects are thread-safe; this class
/// only owns the reference and closes it once.
package final class Connection: @unchecked Sendable {  // the pointer is libvirt's thread-safe object
    let pointer: OpaquePointer
    private let closed = Mutex(false)

    /// Opens `uri` (e.g. `qemu:///system?socket=/run/kvm-launch/libvirt/run/libvirt-sock`).
    package init(uri: String) throws(LibvirtError) {
        EventLoop.start()
        guard let pointer = virConnectOpen(uri) else { throw LibvirtError.last("virConnectOpen(\(uri))") }
        self.pointer = pointer
    }

    deinit { close() }

    /// Closes the connection. A transient domain started with auto-destroy is destroyed by libvirtd
    /// when its connection closes.
    package func close() {
        let wasClosed = closed.withLock { value in
            defer { value = true }
            return value
        }
        if !wasClosed { virConnectClose(pointer) }
    }

    /// True while libvirtd answers on this connection.
    package var isAlive: Bool { virConnectIsAlive(pointer) == 1 }

    /// Starts a transient domain from `xml` (`virDomainCreateXML`).
    /// - Parameter autoDestroy: libvirtd destroys the domain when this connection closes.
    package func createDomain(xml: String, autoDestroy: Bool) throws(LibvirtError) -> Domain {
        let flags = autoDestroy ? UInt32(VIR_DOMAIN_START_AUTODESTROY.rawValue) : 0
        guard let domain = virDomainCreateXML(pointer, xml, flags) else { throw LibvirtError.last("virDomainCreateXML") }
        return Domain(pointer: domain, connection: self)
    }

    /// The domain called `name` (`virDomainLookupByName`).
    package func domain(named name: String) throws(LibvirtError) -> Domain {
        guard let domain = virDomainLookupByName(pointer, name) else { throw LibvirtError.last("virDomainLookupByName(\(name))") }
        return Domain(pointer: domain, connection: self)
    }

    /// The names of the running domains.
    package func runningDomainNames() throws(LibvirtError) -> [String] {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = virConnectListAllDomains(pointer, &list, UInt32(VIR_CONNECT_LIST_DOMAINS_ACTIVE.rawValue))
        guard count >= 0, let list else { throw LibvirtError.last("virConnectListAllDomains") }
        defer { free(list) }
        var names: [String] = []
        for index in 0..<Int(count) {
            guard let domain = list[index] else { continue }
            if let name = virDomainGetName(domain) { names.append(String(cString: name)) }
            virDomainFree(domain)
        }
        return names
    }

    /// A new stream on this connection (`virStreamNew`), blocking.
    package func makeStream() throws(LibvirtError) -> Stream {
        guard let stream = virStreamNew(pointer, 0) else { throw LibvirtError.last("virStreamNew") }
        return Stream(pointer: stream)
    }

    /// Calls `handler` with every lifecycle event of every domain on this connection
    /// (`virConnectDomainEventRegister`). Handlers run on libvirt's event-loop thread.
    package func onLifecycleEvent(_ handler: @escaping @Sendable (LifecycleEvent) -> Void) throws(LibvirtError) {
        let box = Unmanaged.passRetained(LifecycleHandler(handler)).toOpaque()
        let result = virConnectDomainEventRegister(pointer, { _, domain, event, detail, opaque in
            guard let opaque else { return 0 }
            let name = domain.flatMap { virDomainGetName($0) }.map { String(cString: $0) } ?? ""
            let handler = Unmanaged<LifecycleHandler>.fromOpaque(opaque).takeUnretainedValue()
            handler.call(LifecycleEvent(domain: name, event: event, detail: detail))
            return 0
        }, box, { opaque in
            if let opaque { Unmanaged<LifecycleHandler>.fromOpaque(opaque).release() }
        })
        if result != 0 {
            Unmanaged<LifecycleHandler>.fromOpaque(box).release()
            throw LibvirtError.last("virConnectDomainEventRegister")
        }
    }

    /// Calls `handler` once if the connection to libvirtd breaks (libvirtd exited, socket closed).
    package func onClose(_ handler: @escaping @Sendable () -> Void) throws(LibvirtError) {
        let box = Unmanaged.passRetained(CloseHandler(handler)).toOpaque()
        let result = virConnectRegisterCloseCallback(pointer, { _, _, opaque in
            guard let opaque else { return }
            Unmanaged<CloseHandler>.fromOpaque(opaque).takeUnretainedValue().handler()
        }, box, { opaque in
            if let opaque { Unmanaged<CloseHandler>.fromOpaque(opaque).release() }
        })
        if result != 0 {
            Unmanaged<CloseHandler>.fromOpaque(box).release()
            throw LibvirtError.last("virConnectRegisterCloseCallback")
        }
    }
}

private final class LifecycleHandler: Sendable {
    let call: @Sendable (LifecycleEvent) -> Void
    init(_ call: @escaping @Sendable (LifecycleEvent) -> Void) { self.call = call }
}

private final class CloseHandler: Sendable {
    let handler: @Sendable () -> Void
    init(_ handler: @escaping @Sendable () -> Void) { self.handler = handler }
}

/// A domain lifecycle event (`VIR_DOMAIN_EVENT_*`).
package struct LifecycleEvent: Sendable, Equatable, CustomStringConvertible {
    package var domain: String
    /// `virDomainEventType`.
    package var event: Int32
    /// The event's detail (e.g. `VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN`).
    package var detail: Int32

    package init(domain: String, event: Int32, detail: Int32) {
        self.domain = domain
        self.event = event
        self.detail = detail
    }

    /// The domain stopped (shut down, destroyed, crashed, failed).
    package var isStopped: Bool { event == Int32(VIR_DOMAIN_EVENT_STOPPED.rawValue) }
    /// It stopped because the guest shut itself down.
    package var isGuestShutdown: Bool { isStopped && detail == Int32(VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN.rawValue) }

    package var description: String {
        let names = ["defined", "undefined", "started", "suspended", "resumed", "stopped", "shutdown", "pmsuspended", "crashed"]
        let name = names.indices.contains(Int(event)) ? names[Int(event)] : "event \(event)"
        return "\(name) (detail \(detail))"
    }
}

/// libvirt's default event loop (`virEventRegisterDefaultImpl`) on a thread of its own, started
/// once before the first connection: lifecycle events, close callbacks and keep-alives need it.
enum EventLoop {
    private static let started = Mutex(false)

    static func start() {
        let first = started.withLock { value in
            defer { value = true }
            return !value
        }
        guard first else { return }
        // libvirt prints every error to stderr unless told otherwise; errors reach the user once,
        // as LibvirtError, in kvm-launch's own line.
        virSetErrorFunc(nil, { _, _ in })
        virEventRegisterDefaultImpl()
        startDetachedThread(named: "libvirt-events") {
            while true { _ = virEventRunDefaultImpl() }
        }
    }
}
