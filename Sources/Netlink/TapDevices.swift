import CNetlink
import Dispatch
import NetworkTypes
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The character devices a VM reads and writes Ethernet frames through: TAP devices from
/// `/dev/net/tun` and the device node of a macvtap. Plain file descriptors; whoever holds the
/// last descriptor of a non-persistent TAP owns the device (closing it deletes the link).
package enum TapDevices {
    /// A device could not be made or opened.
    package struct Error: Swift.Error, CustomStringConvertible, Sendable {
        package var operation: String
        package var errno: Errno
        package var description: String { "\(operation) failed: \(errno.description)" }
        package init(operation: String, errno: Errno) {
            self.operation = operation
            self.errno = errno
        }
    }

    // From <linux/if_tun.h>.
    static let tunSetInterface: UInt = 0x4004_54CA  // TUNSETIFF = _IOW('T', 202, int)
    static let flagTap: Int16 = 0x0002              // IFF_TAP
    static let flagNoPacketInfo: Int16 = 0x1000     // IFF_NO_PI
    static let flagVnetHeader: Int16 = 0x4000       // IFF_VNET_HDR
    static let flagMultiQueue: Int16 = 0x0100       // IFF_MULTI_QUEUE

    /// Creates a TAP link named `name` (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) and returns its descriptor.
    /// The link lives while the descriptor (or a copy of it, e.g. in QEMU) is open.
    package static func openTap(named name: String, path: String = "/dev/net/tun") throws(Error) -> FileDescriptor {
        try openTap(named: name, queues: 1, path: path)[0]
    }

    /// Creates a TAP link named `name` with `queues` queues: one descriptor per queue, each attached
    /// with `TUNSETIFF` on the same name (`IFF_MULTI_QUEUE` when more than one). The link lives while
    /// any of them is open. On failure the ones already open are closed (the link goes with them).
    package static func openTap(named name: String, queues: Int, path: String = "/dev/net/tun") throws(Error) -> [FileDescriptor] {
        var flags = flagTap | flagNoPacketInfo | flagVnetHeader
        if queues > 1 { flags |= flagMultiQueue }
        var opened: [FileDescriptor] = []
        for queue in 0..<max(queues, 1) {
            let descriptor: FileDescriptor
            do {
                descriptor = try FileDescriptor.open(path, .readWrite, options: [.closeOnExec, .nonBlocking])
            } catch {
                for earlier in opened { try? earlier.close() }
                throw Error(operation: "open \(path) (does the container have /dev/net/tun? run it --privileged)", errno: error as? Errno ?? .ioError)
            }
            do {
                try setInterface(descriptor, name: name, flags: flags)
            } catch {
                try? descriptor.close()
                for earlier in opened { try? earlier.close() }
                throw Error(operation: queues > 1 ? "create tap \(name) (queue \(queue + 1) of \(queues))" : "create tap \(name)", errno: error)
            }
            opened.append(descriptor)
        }
        return opened
    }

    /// `TUNSETIFF` on an open tun/tap or macvtap descriptor: a `struct ifreq` with the name and
    /// `ifr_flags`.
    static func setInterface(_ descriptor: FileDescriptor, name: String, flags: Int16) throws(Errno) {
        var request = InterfaceRequest(name: name)
        request.flags = flags
        if request.perform(tunSetInterface, on: descriptor.rawValue) < 0 { throw Errno.current }
    }

    /// Reads `major:minor` of a macvtap's character device from sysfs
    /// (`/sys/class/net/NAME/macvtap/tapIFINDEX/dev`).
    ///
    /// sysfs shows the network namespace of whoever mounted it, which inside a container is the
    /// container's own — the reason for not trusting `/dev/tapN`: ifindexes repeat across namespaces.
    package static func macvtapDeviceNumber(name: String, index: Int32, sysfs: String = "/sys/class/net") throws(Error) -> (major: UInt32, minor: UInt32) {
        let path = "\(sysfs)/\(name)/macvtap/tap\(index)/dev"
        let text: String
        do {
            let descriptor = try FileDescriptor.open(path, .readOnly, options: .closeOnExec)
            defer { try? descriptor.close() }
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = try buffer.withUnsafeMutableBytes { try descriptor.read(into: $0) }
            text = String(decoding: buffer.prefix(count), as: UTF8.self)
        } catch {
            throw Error(operation: "read \(path) (is /sys mounted for this network namespace?)", errno: error as? Errno ?? .noSuchFileOrDirectory)
        }
        let parts = text.split(whereSeparator: { $0 == ":" || $0 == "\n" })
        guard parts.count == 2, let major = UInt32(parts[0]), let minor = UInt32(parts[1]) else {
            throw Error(operation: "parse \(path) (\"\(text)\")", errno: .invalidArgument)
        }
        return (major, minor)
    }

    /// Makes a private character-device node for a macvtap at `nodePath` (which must not exist:
    /// `mknod` never replaces an entry), opens it without following links, and removes the node
    /// again: the descriptor is all QEMU needs, so nothing is left in the run directory.
    package static func openMacvtap(name: String, index: Int32, nodePath: String, sysfs: String = "/sys/class/net") throws(Error) -> FileDescriptor {
        try openMacvtap(name: name, index: index, nodePath: nodePath, queues: 1, sysfs: sysfs)[0]
    }

    /// The same with `queues` queues: the node is opened once per queue (each open of a macvtap's
    /// device is a queue of its own) and, above one, each descriptor is marked `IFF_MULTI_QUEUE`
    /// with `TUNSETIFF`. On failure the ones already open are closed.
    package static func openMacvtap(name: String, index: Int32, nodePath: String, queues: Int, sysfs: String = "/sys/class/net") throws(Error) -> [FileDescriptor] {
        let number = try macvtapDeviceNumber(name: name, index: index, sysfs: sysfs)
        let device = makeDevice(major: number.major, minor: number.minor)
        guard mknod(nodePath, S_IFCHR | 0o600, device) == 0 else {
            throw Error(operation: "mknod \(nodePath) \(number.major):\(number.minor)", errno: Errno.current)
        }
        defer { unlink(nodePath) }
        var opened: [FileDescriptor] = []
        for queue in 0..<max(queues, 1) {
            let descriptor: FileDescriptor
            do {
                descriptor = try FileDescriptor.open(nodePath, .readWrite, options: [.closeOnExec, .nonBlocking, .noFollow])
            } catch {
                for earlier in opened { try? earlier.close() }
                throw Error(operation: "open \(nodePath)" + (queues > 1 ? " (queue \(queue + 1) of \(queues))" : ""), errno: error as? Errno ?? .ioError)
            }
            if queues > 1 {
                do {
                    try setInterface(descriptor, name: "", flags: flagTap | flagNoPacketInfo | flagVnetHeader | flagMultiQueue)
                } catch {
                    try? descriptor.close()
                    for earlier in opened { try? earlier.close() }
                    throw Error(operation: "set IFF_MULTI_QUEUE on \(nodePath) (queue \(queue + 1) of \(queues))", errno: error)
                }
            }
            opened.append(descriptor)
        }
        return opened
    }

    /// Whether `/dev/vhost-net` opens here (opened and closed at once; nothing changes).
    package static func vhostNetUsable(path: String = "/dev/vhost-net") -> Bool {
        guard let descriptor = openVhostNet(path: path) else { return false }
        try? descriptor.close()
        return true
    }

    /// Opens `/dev/vhost-net` when it exists and opens; nil otherwise.
    package static func openVhostNet(path: String = "/dev/vhost-net") -> FileDescriptor? {
        try? FileDescriptor.open(path, .readWrite, options: .closeOnExec)
    }

    /// glibc's `makedev` encoding of a device number.
    static func makeDevice(major: UInt32, minor: UInt32) -> dev_t {
        let major = UInt64(major), minor = UInt64(minor)
        let high = ((major & 0xFFFF_F000) << 32) | ((minor & 0xFFFF_FF00) << 12)
        return dev_t(high | ((major & 0xFFF) << 8) | (minor & 0xFF))
    }
}

/// ``TapDeviceOperations`` on the real `/dev/net/tun`, sysfs and device nodes.
package final class SystemTapDevices: TapDeviceOperations {
    package init() {}

    package func openTap(named name: String, queues: Int) throws(TapDevices.Error) -> [FileDescriptor] {
        try TapDevices.openTap(named: name, queues: queues)
    }

    package func openMacvtap(name: String, index: Int32, nodePath: String, queues: Int) throws(TapDevices.Error) -> [FileDescriptor] {
        try TapDevices.openMacvtap(name: name, index: index, nodePath: nodePath, queues: queues)
    }

    package func openVhostNet() -> FileDescriptor? { TapDevices.openVhostNet() }

    package func close(_ descriptor: FileDescriptor, nodePath: String?) throws(TapDevices.Error) {
        defer { if let nodePath { unlink(nodePath) } }
        do {
            try descriptor.close()
        } catch {
            throw TapDevices.Error(operation: "close descriptor \(descriptor.rawValue)", errno: error as? Errno ?? .badFileDescriptor)
        }
    }

    /// Closes every item on its own thread: closing a macvtap or TAP waits for an RCU grace period
    /// in the kernel (~10 ms), and waits that overlap end together.
    package func closeAll(_ items: [DeviceToClose]) -> [TapDevices.Error?] {
        closeAll(items, meanwhile: {})
    }

    /// Closes every item on its own thread and runs `meanwhile` once each close is under way in the
    /// kernel (the thread sleeps in it: on the RTNL lock or in its grace period) or done, then waits
    /// for every close. Threads that do not all get there within 2 ms (a busy machine) are not waited
    /// for: `meanwhile` then runs anyway, the closes merely overlap it less.
    package func closeAll(_ items: [DeviceToClose], meanwhile: () -> Void) -> [TapDevices.Error?] {
        let jobs = items.map { CloseJob(item: $0) }
        let starting = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        for job in jobs {
            let close: @Sendable () -> Void = {
                job.thread = cnetlink_thread_id()
                starting.signal()
                job.run()
                finished.signal()
            }
            if !startDetachedThread(named: "close-tap", close) { close() }
        }
        for _ in jobs { starting.wait() }
        let deadline = ContinuousClock.now + .milliseconds(2)
        for job in jobs {
            while Self.isRunning(thread: job.thread), ContinuousClock.now < deadline { sched_yield() }
        }
        meanwhile()
        for _ in jobs { finished.wait() }
        return jobs.map(\.error)
    }

    /// Whether the thread is still on its way to the kernel's wait: its state in
    /// `/proc/self/task/TID/stat` is anything but `D` (uninterruptible sleep), and it exists.
    private static func isRunning(thread: Int32) -> Bool {
        guard let descriptor = try? FileDescriptor.open("/proc/self/task/\(thread)/stat", .readOnly, options: .closeOnExec) else { return false }
        defer { try? descriptor.close() }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = (try? buffer.withUnsafeMutableBytes { try descriptor.read(into: $0) }) ?? 0
        guard count > 0 else { return false }
        // "TID (name) S …": the state follows the last ')'.
        guard let end = buffer.prefix(count).lastIndex(of: UInt8(ascii: ")")), end + 2 < count else { return false }
        return buffer[end + 2] != UInt8(ascii: "D")
    }

    /// One close on its own thread; `error` is read only after the thread signalled it finished.
    private final class CloseJob: @unchecked Sendable {
        let item: DeviceToClose
        var error: TapDevices.Error?
        /// Set by the closing thread before it signals that it started.
        var thread: Int32 = 0
        init(item: DeviceToClose) { self.item = item }
        func run() {
            defer { if let node = item.nodePath { unlink(node) } }
            do {
                try item.descriptor.close()
            } catch {
                self.error = TapDevices.Error(operation: "close descriptor \(item.descriptor.rawValue)", errno: error as? Errno ?? .badFileDescriptor)
            }
        }
    }

    package func removeStaleNodes(in directory: String, prefix: String) {
        guard let handle = opendir(directory) else { return }
        defer { closedir(handle) }
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix(prefix) { unlink("\(directory)/\(name)") }
        }
    }
}
