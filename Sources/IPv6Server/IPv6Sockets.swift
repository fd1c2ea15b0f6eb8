#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import DHCPServer
import Foundation
import NetworkTypes
import SystemPackage

/// The thin OS layer of the IPv6 responder: one AF_PACKET socket that receives the interface's
/// IPv6 frames (with the DHCPv6 and all-routers group addresses joined) and sends whole frames,
/// and a pipe that wakes the receive loop. Created in the network namespace of the calling thread.
struct IPv6Sockets: ~Copyable {
    let packet: Int32
    let wakeup: Int32
    let wakeupWriter: Int32
    let interfaceIndex: Int32
    let interfaceMAC: MACAddress

    /// <linux/if_packet.h>, which the Glibc module does not export.
    static let solPacket: Int32 = 263
    static let packetAddMembership: Int32 = 1
    static let packetMRMulticast: UInt16 = 0
    static let packetAuxData: Int32 = 8
    /// `tp_status` bits of `struct tpacket_auxdata`: the checksum is still to be filled in by
    /// offload (a local sender such as a veth peer), or the device verified it.
    static let statusChecksumNotReady: UInt32 = 1 << 3
    static let statusChecksumValid: UInt32 = 1 << 7

    /// - Parameter groups: multicast groups the device must pass up (the responder's: all DHCPv6
    ///   servers and all routers; the gateway probe needs none, its answers are unicast).
    /// - Parameter everyProtocol: bind for every protocol (ETH_P_ALL), so frames are seen even on a
    ///   bridge port, whose bridge takes them before protocol-bound sockets (only IPv6 ones are parsed).
    init(interfaceName name: String, groups: [IPv6Address] = [.allDHCPServersAndRelays, .allRouters],
         everyProtocol: Bool = false) throws(IPv6ServerError) {
        guard let index = PacketSocket.interfaceIndex(name) else { throw .interfaceNotFound(name) }

        var opened: [Int32] = []
        func fail(_ operation: String) -> IPv6ServerError {
            let error = IPv6ServerError.systemCall(operation, interface: name, errno: .current)
            for fd in opened { close(fd) }
            return error
        }

        // Protocol 0 first, the protocol with bind: a socket created with a protocol is hooked to
        // every interface at once, and bind() must then unhook it with a full RCU grace period
        // (synchronize_net, ~15 ms here); this way bind() hooks it once, to this interface only.
        let packet = PacketSocket.open()
        guard packet >= 0 else { throw fail("socket(AF_PACKET, SOCK_RAW)") }
        opened.append(packet)
        let protocolNumber = everyProtocol ? PacketSocket.ethertypeAll : PacketSocket.ethertypeIPv6
        guard PacketSocket.bindToInterface(packet, ethertype: protocolNumber, interfaceIndex: index) == 0 else {
            throw fail("bind(AF_PACKET)")
        }
        guard let mac = PacketSocket.hardwareAddress(of: name, using: packet) else { throw fail("ioctl(SIOCGIFHWADDR)") }

        // The device must pass these group addresses up even when it filters multicast (macvlan does).
        for group in groups {
            var membership: [UInt8] = []
            withUnsafeBytes(of: index) { membership += $0 }
            withUnsafeBytes(of: Self.packetMRMulticast) { membership += $0 }
            withUnsafeBytes(of: UInt16(6)) { membership += $0 }
            membership += group.multicastMAC.octets + [0, 0]
            let joined = membership.withUnsafeBytes {
                setsockopt(packet, Self.solPacket, Self.packetAddMembership, $0.baseAddress, socklen_t($0.count))
            }
            guard joined == 0 else { throw fail("setsockopt(PACKET_ADD_MEMBERSHIP \(group))") }
        }

        var on: Int32 = 1
        guard setsockopt(packet, Self.solPacket, Self.packetAuxData, &on, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw fail("setsockopt(PACKET_AUXDATA)")
        }

        guard let pipe = PacketSocket.wakeupPipe() else { throw fail("pipe") }
        self.packet = packet
        wakeup = pipe.reader
        wakeupWriter = pipe.writer
        interfaceIndex = index
        interfaceMAC = mac
    }

    deinit {
        close(packet)
        close(wakeup)
        close(wakeupWriter)
    }

    /// Closes the descriptors on a thread of their own and returns at once: closing a packet socket
    /// hooked to a protocol waits for an RCU grace period (~13 ms here), which the launcher's start
    /// need not wait for (the gateway probe's socket).
    consuming func closeInBackground() {
        let descriptors = [packet, wakeup, wakeupWriter]
        discard self
        Thread { for descriptor in descriptors { close(descriptor) } }.start()
    }

    func signalStop() {
        var one: UInt8 = 1
        _ = write(wakeupWriter, &one, 1)
    }

    enum Event {
        /// A frame of this length; `checksumUnverifiable` when offload left its checksum unfilled.
        case frame(Int, checksumUnverifiable: Bool)
        case timeout
        case stopped
    }

    /// Blocks until a frame that did not come from this host arrives (its length returned, bytes in
    /// `buffer`), `timeoutMilliseconds` pass, or ``signalStop()`` was called.
    func wait(into buffer: inout [UInt8], timeoutMilliseconds: Int32) throws(IPv6ServerError) -> Event {
        while true {
            var fds = [pollfd(fd: packet, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeup, events: Int16(POLLIN), revents: 0)]
            let ready = retryingOnInterrupt { poll(&fds, nfds_t(fds.count), timeoutMilliseconds) }
            if ready < 0 { throw .systemCall("poll", interface: nil, errno: .current) }
            if fds[1].revents != 0 { return .stopped }
            if ready == 0 { return .timeout }
            guard fds[0].revents != 0 else { continue }
            var from = [UInt8](repeating: 0, count: 20)
            var control = [UInt8](repeating: 0, count: 64)
            var status: UInt32 = 0
            let count = retryingOnInterrupt { buffer.withUnsafeMutableBytes { bytes in
                from.withUnsafeMutableBytes { fromBytes in
                    control.withUnsafeMutableBytes { controlBytes in
                        var vector = iovec(iov_base: bytes.baseAddress, iov_len: bytes.count)
                        return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                            var header = msghdr()
                            header.msg_name = fromBytes.baseAddress
                            header.msg_namelen = socklen_t(fromBytes.count)
                            header.msg_iov = vectorPointer
                            header.msg_iovlen = 1
                            header.msg_control = controlBytes.baseAddress
                            header.msg_controllen = controlBytes.count
                            let received = recvmsg(packet, &header, Int32(MSG_DONTWAIT))
                            if received >= 0 { status = Self.auxiliaryStatus(controlBytes, length: Int(header.msg_controllen)) }
                            return received
                        }
                    }
                }
            } }
            if count < 0 {
                let error = Errno.current
                if error.isWouldBlock { continue }  // poll's readiness was stale: no data after all
                throw .systemCall("recvmsg(AF_PACKET)", interface: nil, errno: error)
            }
            if from[10] == PacketSocket.outgoing { continue }  // our own frames, looped back to packet sockets
            return .frame(count, checksumUnverifiable: status & Self.statusChecksumNotReady != 0)
        }
    }

    /// `tp_status` from the PACKET_AUXDATA control message (`struct cmsghdr`: 8-byte length,
    /// level, type, then `struct tpacket_auxdata` whose first field is `tp_status`); 0 when absent.
    static func auxiliaryStatus(_ control: UnsafeMutableRawBufferPointer, length: Int) -> UInt32 {
        var offset = 0
        while offset + 16 + 4 <= min(length, control.count) {
            let cmsgLength = Int(control.loadUnaligned(fromByteOffset: offset, as: UInt.self))
            let level = control.loadUnaligned(fromByteOffset: offset + 8, as: Int32.self)
            let type = control.loadUnaligned(fromByteOffset: offset + 12, as: Int32.self)
            guard cmsgLength >= 16 else { return 0 }
            if level == solPacket, type == packetAuxData { return control.loadUnaligned(fromByteOffset: offset + 16, as: UInt32.self) }
            offset += (cmsgLength + 7) & ~7
        }
        return 0
    }

    func send(frame: [UInt8]) throws(IPv6ServerError) {
        guard PacketSocket.send(frame, on: packet, ethertype: PacketSocket.ethertypeIPv6, interfaceIndex: interfaceIndex) else {
            throw .systemCall("sendto(AF_PACKET)", interface: nil, errno: .current)
        }
    }
}
