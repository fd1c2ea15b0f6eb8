import NetworkTypes

/// Everything QEMU is started with. ``arguments()`` turns it into the argument
/// array (never a shell string): element 0 is the first option, not the binary.
///
/// Arguments are emitted in this order, so later, user-supplied options win where
/// QEMU lets a repeated option override an earlier one:
/// `-nodefaults -no-user-config [-name]`, machine and accelerator, memory/vCPUs/CPU
/// model (or `KVM_CPU_OPTS`), optional devices (or `KVM_OPTS`), the disk (or
/// `KVM_BLK_OPTS`), the NICs, the serial console on stdio,
/// graphics (or `KVM_VIDEO_OPTS`), the QMP socket, then ``extraArguments`` verbatim.
package struct QEMUConfiguration: Sendable, Equatable {
    /// Memory when neither an input nor `KVM_CPU_OPTS` sets it.
    package static let defaultMemoryMiB = LaunchDefaults.memoryMiB
    /// vCPUs when neither an input nor `KVM_CPU_OPTS` sets it.
    package static let defaultVCPUs = LaunchDefaults.vcpus
    /// The longest unix socket path Linux accepts (108 bytes of `sun_path` with the terminating zero).
    package static let maximumSocketPathBytes = 107

    /// The QEMU machine type. q35 (PCIe, the default) suits every current guest;
    /// `pc` (i440FX) is there for old guests that only know PCI/IDE-era chipsets.
    package enum MachineType: Sendable, Equatable {
        case q35
        case pc
        case named(String)

        package var name: String {
            switch self {
            case .q35: "q35"
            case .pc: "pc"
            case let .named(name): name
            }
        }
    }

    /// Local display and video device.
    package enum Graphics: Sendable, Equatable {
        /// No video device, no window: the serial console is the only console.
        case none
        /// A video device (`-vga MODEL`) with no local window, optionally served
        /// over VNC (`-vnc DISPLAY`, e.g. `:0` or `unix:/run/kvm-launch/vnc.sock`).
        case vga(model: String, vnc: String?)

        /// What the old container did with `DISABLE_VGA=no`: `-vga qxl -display none`.
        package static let legacyVGA = Graphics.vga(model: "qxl", vnc: nil)
    }

    package var machineType: MachineType
    package var accelerator: Accelerator
    package var memoryMiB: Int
    package var vcpus: Int
    /// `-cpu` model; nil means `host` under KVM and `max` under TCG.
    package var cpuModel: String?
    /// The boot disk; nil starts QEMU without one (used by tests).
    package var disk: DiskImage?
    /// One virtio-net NIC per entry, in order (`net0`, `net1`, ...).
    package var nics: [NetworkInterfaceCard]
    package var graphics: Graphics
    /// Where QEMU listens for QMP: a unix socket path, or `@NAME` for an abstract unix socket
    /// (Linux: a name in the network namespace, no file; what the launcher uses, see ``QMPAddress``).
    package var qmpSocketPath: String
    /// `-name` (shown in `ps` and to the guest via SMBIOS); nil leaves it out.
    package var name: String?
    /// The old container's `KVM_*_OPTS` variables.
    package var legacy: LegacyOptions
    /// The container's CMD: appended last, each element one argument, unchanged.
    package var extraArguments: [String]
    /// A read-only cloud-init seed disk (`cidata`), handed over as this open, read-only descriptor number.
    package var seedDescriptor: Int32? = nil

    package init(
        machineType: MachineType = .q35,
        accelerator: Accelerator,
        memoryMiB: Int = QEMUConfiguration.defaultMemoryMiB,
        vcpus: Int = QEMUConfiguration.defaultVCPUs,
        cpuModel: String? = nil,
        disk: DiskImage?,
        nics: [NetworkInterfaceCard] = [],
        graphics: Graphics = .none,
        qmpSocketPath: String,
        name: String? = nil,
        legacy: LegacyOptions = LegacyOptions(),
        extraArguments: [String] = []
    ) {
        self.machineType = machineType
        self.accelerator = accelerator
        self.memoryMiB = memoryMiB
        self.vcpus = vcpus
        self.cpuModel = cpuModel
        self.disk = disk
        self.nics = nics
        self.graphics = graphics
        self.qmpSocketPath = qmpSocketPath
        self.name = name
        self.legacy = legacy
        self.extraArguments = extraArguments
    }

    /// The QEMU argument array (without the binary itself).
    package func arguments() throws(QEMUConfigurationError) -> [String] {
        try validate()
        var args = ["-nodefaults", "-no-user-config"]
        if let name { args += ["-name", QEMUOption.escape(name)] }
        // `-machine accel=` rather than `-accel` so that a `-machine ...,accel=kvm`
        // in KVM_CPU_OPTS (common with the old container) merges instead of clashing.
        args += ["-machine", "type=\(QEMUOption.escape(machineType.name)),accel=\(accelerator.rawValue)"]

        if let cpu = legacy.cpu {
            args += cpu
        } else {
            let model = cpuModel ?? (accelerator == .kvm ? "host" : "max")
            args += ["-m", "\(memoryMiB)", "-smp", "\(vcpus)", "-cpu", model]
        }

        args += legacy.base ?? LegacyOptions.defaultBase

        if let block = legacy.block {
            args += block
        } else if let disk {
            args += disk.arguments()
        }
        if let seed = seedDescriptor {
            // A raw, read-only virtio disk read from the descriptor kvm-launch filled in memory: no file
            // anywhere, nothing for the guest to write to.
            args += ["-add-fd", "fd=\(seed),set=\(seed)",
                     "-blockdev", "{\"driver\": \"raw\", \"node-name\": \"seed0\", \"read-only\": true, \"file\": {\"driver\": \"file\", \"filename\": \"/dev/fdset/\(seed)\", \"read-only\": true}}",
                     "-device", "virtio-blk-pci,drive=seed0"]
        }

        let layout = try nicLayout()
        for (index, nic) in nics.enumerated() {
            args += ["-netdev", nic.netdevOption(id: "net\(index)")]
            var device = "\(nic.model),netdev=net\(index),mac=\(nic.mac)" + (nic.hostMTU.map { ",host_mtu=\($0)" } ?? "")
            if nic.queueCount > 1 {
                device += ",mq=on,vectors=\(2 * nic.queueCount + 2)"
            } else if layout.addresses[index] != nil {
                device += ",vectors=\(NICLayout.sharedSlotVectors)"
            }
            if let address = layout.addresses[index] { device += ",bus=pcie.0,\(address.option)" }
            args += ["-device", device]
        }

        // signal=off: a Ctrl-C typed on the console is a byte for the guest, not
        // a SIGINT that would make QEMU quit.
        args += ["-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"]

        if let video = legacy.video {
            args += video
        } else {
            switch graphics {
            case .none:
                args += ["-display", "none"]
            case let .vga(model, vnc):
                args += ["-vga", model, "-display", "none"]
                if let vnc { args += ["-vnc", vnc] }
            }
        }

        let qmp = QMPAddress(qmpSocketPath)
        args += [
            "-chardev", "socket,id=qmp,path=\(QEMUOption.escape(qmp.name))\(qmp.isAbstract ? ",abstract=on" : ""),server=on,wait=off",
            "-mon", "chardev=qmp,mode=control",
        ]
        args += extraArguments
        return args
    }

    /// The child descriptor numbers the arguments refer to (NIC backends, disk, seed), in argument
    /// order, read back from this configuration: `arguments()` checks them (none of 0-2, no
    /// duplicates) and the launcher's mappings must give QEMU exactly these. Which number each
    /// descriptor gets is decided by the launcher's `DescriptorLayout`, not here.
    package var childFileDescriptors: [Int32] {
        nics.flatMap { nic -> [Int32] in
            switch nic.backend {
            case let .tapFileDescriptor(fd, .fileDescriptor(vhostFD)): return [fd, vhostFD]
            case let .tapFileDescriptor(fd, _): return [fd]
            case let .tapQueueDescriptors(fds, vhost): return fds + vhost
            case .tapDevice: return []
            }
        } + (legacy.block == nil ? disk?.childDescriptors ?? [] : []) + (seedDescriptor.map { [$0] } ?? [])
    }

    /// PCI slots on the machine's root bus that kvm-launch's own devices can use: 32, minus the host
    /// bridge (slot 0) and the chipset functions (q35: the ICH9 in slot 31; pc: the PIIX3 in slot 1),
    /// minus the balloon, the disk and the graphics card when present. nil for a named machine type.
    package var freePCISlotsForNICs: Int? {
        if case .named = machineType { return nil }
        var free = 32 - 2
        if legacy.base == nil { free -= 1 }  // the balloon
        if legacy.block == nil, disk != nil { free -= 1 }
        if seedDescriptor != nil { free -= 1 }
        if legacy.video == nil, case .vga = graphics { free -= 1 }
        return free
    }

    private func validate() throws(QEMUConfigurationError) {
        guard memoryMiB > 0 else { throw .invalidMemory(memoryMiB) }
        guard vcpus > 0 else { throw .invalidVCPUs(vcpus) }
        let qmp = QMPAddress(qmpSocketPath)
        guard !qmp.name.isEmpty else { throw .emptyQMPSocketPath }
        guard qmp.name.utf8.count <= Self.maximumSocketPathBytes else { throw .socketPathTooLong(qmpSocketPath) }
        _ = try nicLayout()
        var seen: Set<Int32> = []
        for fd in childFileDescriptors {
            guard fd > 2 else { throw .reservedFileDescriptor(fd) }
            guard seen.insert(fd).inserted else { throw .duplicateFileDescriptor(fd) }
        }
        for nic in nics {
            if let mtu = nic.hostMTU, !NetworkInterfaceCard.hostMTURange.contains(mtu) { throw .invalidHostMTU(mtu) }
            if case let .tapQueueDescriptors(fds, vhost) = nic.backend, fds.isEmpty || !(vhost.isEmpty || vhost.count == fds.count) {
                throw .invalidQueueDescriptors(taps: fds.count, vhost: vhost.count)
            }
            if case let .tapDevice(name, _) = nic.backend, name.isEmpty || name.contains(",") || name.count > 15 {
                throw .invalidTapName(name)
            }
        }
    }
}

/// A virtio NIC and the host side it is connected to.
package struct NetworkInterfaceCard: Sendable, Equatable {
    /// How vhost-net (in-kernel packet processing) is used for a tap file descriptor.
    package enum Vhost: Sendable, Equatable {
        case off
        /// QEMU opens /dev/vhost-net itself.
        case on
        /// An already-open /dev/vhost-net, at this descriptor number in QEMU.
        case fileDescriptor(Int32)
    }

    package enum Backend: Sendable, Equatable {
        /// An open tap or macvtap (/dev/tapN) descriptor, at this number in QEMU:
        /// `-netdev tap,fd=N[,vhost=on[,vhostfd=V]]`.
        case tapFileDescriptor(Int32, vhost: Vhost)
        /// A tap device QEMU opens by name, with no helper scripts:
        /// `-netdev tap,ifname=TAP,script=no,downscript=no[,vhost=on]`.
        case tapDevice(String, vhost: Bool)
        /// A multiqueue tap or macvtap: one open descriptor per queue (`IFF_MULTI_QUEUE`), at these
        /// numbers in QEMU, and with vhost-net one open `/dev/vhost-net` per queue (empty: vhost off):
        /// `-netdev tap,fds=A:B[,vhost=on,vhostfds=C:D]`.
        case tapQueueDescriptors([Int32], vhost: [Int32])
    }

    /// The guest's MAC (the container interface's original MAC).
    package var mac: MACAddress
    package var backend: Backend
    /// The QEMU NIC device; virtio-net by default.
    package var model: String
    /// The MTU the guest's driver takes from the device (virtio-net `host_mtu`, feature
    /// VIRTIO_NET_F_MTU), so the guest has the container interface's MTU without DHCP option 26.
    /// nil leaves QEMU's default (the guest picks 1500).
    package var hostMTU: Int?

    /// What virtio-net accepts as `host_mtu` (68, IPv4's minimum, up to the 16-bit field's maximum).
    package static let hostMTURange = 68...65535

    package init(mac: MACAddress, backend: Backend, model: String = "virtio-net-pci", hostMTU: Int? = nil) {
        self.mac = mac
        self.backend = backend
        self.model = model
        self.hostMTU = hostMTU
    }

    /// Queue pairs of the NIC: the number of descriptors of a multiqueue tap, else 1. Above 1 the
    /// device gets `mq=on` and `vectors=2×queues+2` (one MSI-X vector per virtqueue, one for the
    /// control queue, one for configuration changes).
    package var queueCount: Int {
        if case let .tapQueueDescriptors(fds, _) = backend { return max(fds.count, 1) }
        return 1
    }

    func netdevOption(id: String) -> String {
        switch backend {
        case let .tapFileDescriptor(fd, vhost):
            var option = "tap,id=\(id),fd=\(fd)"
            switch vhost {
            case .off: break
            case .on: option += ",vhost=on"
            case let .fileDescriptor(vhostFD): option += ",vhost=on,vhostfd=\(vhostFD)"
            }
            return option
        case let .tapDevice(name, vhost):
            return "tap,id=\(id),ifname=\(name),script=no,downscript=no" + (vhost ? ",vhost=on" : "")
        case let .tapQueueDescriptors(fds, vhost):
            // QEMU takes the queue count from fds= (queues= is refused next to it).
            let list = { (numbers: [Int32]) in numbers.map(String.init).joined(separator: ":") }
            return "tap,id=\(id),fds=\(list(fds))" + (vhost.isEmpty ? "" : ",vhost=on,vhostfds=\(list(vhost))")
        }
    }
}

/// The old container's `KVM_*_OPTS` variables, already split into words (by
/// `LaunchConfiguration`, which reads and validates the environment).
/// A nil value means "not set": kvm-launch's own options are used.
package struct LegacyOptions: Sendable, Equatable {
    /// What `KVM_OPTS` replaces: devices the old container added by default.
    package static let defaultBase = ["-device", "virtio-balloon-pci,id=balloon0"]

    /// `KVM_CPU_OPTS`: replaces `-m`, `-smp` and `-cpu`.
    package var cpu: [String]?
    /// `KVM_BLK_OPTS`: replaces the disk option.
    package var block: [String]?
    /// `KVM_VIDEO_OPTS`: replaces the graphics options.
    package var video: [String]?
    /// `KVM_OPTS`: replaces ``defaultBase``. Unlike the old container it does not
    /// remove `-nodefaults`, the console or QMP: supervision depends on them.
    package var base: [String]?

    package init(cpu: [String]? = nil, block: [String]? = nil, video: [String]? = nil, base: [String]? = nil) {
        self.cpu = cpu
        self.block = block
        self.video = video
        self.base = base
    }
}

/// An input that cannot become a QEMU command line.
package enum QEMUConfigurationError: Error, Equatable, CustomStringConvertible {
    case invalidMemory(Int)
    case invalidVCPUs(Int)
    case emptyQMPSocketPath
    case reservedFileDescriptor(Int32)
    case duplicateFileDescriptor(Int32)
    case invalidTapName(String)
    case socketPathTooLong(String)
    case tooManyNICs(count: Int, slots: Int, machine: String)
    /// More NICs than kvm-launch gives a q35 machine (``NICLayout/maximumNICs``).
    case moreNICsThanSupported(count: Int, maximum: Int)
    case invalidHostMTU(Int)
    /// A multiqueue NIC without descriptors, or with vhost descriptors that are not one per queue.
    case invalidQueueDescriptors(taps: Int, vhost: Int)

    package var description: String {
        switch self {
        case let .invalidMemory(value): "guest memory \(value) MiB is not positive: set a memory size of at least 1 MiB"
        case let .invalidVCPUs(value): "vCPU count \(value) is not positive: set at least 1 vCPU"
        case .emptyQMPSocketPath: "the QMP socket path is empty: give a path such as /run/kvm-launch/qmp.sock"
        case let .reservedFileDescriptor(fd): "descriptor \(fd) is one of QEMU's stdin/stdout/stderr: pass NIC descriptors at 3 or above"
        case let .duplicateFileDescriptor(fd): "descriptor \(fd) is used by two NIC backends: give every tap and vhost descriptor its own number"
        case let .invalidTapName(name): "tap device name '\(name)' is not a valid interface name: use 1-15 characters without commas"
        case let .socketPathTooLong(path): "the QMP socket path '\(path)' is \(path.utf8.count) bytes, more than a unix socket path may have (107): choose a shorter path"
        case let .tooManyNICs(count, slots, machine): "\(count) interfaces would need \(count) NICs but the \(machine) machine has \(slots) free PCI slots for them: attach fewer interfaces (ATTACH_IFACES with AUTO_ATTACH=no)"
        case let .moreNICsThanSupported(count, maximum): "\(count) interfaces would need \(count) NICs but kvm-launch gives a VM at most \(maximum) (each virtio NIC takes interrupt vectors of the guest's CPUs, see README \"NIC count\"): attach fewer interfaces (ATTACH_IFACES with AUTO_ATTACH=no)"
        case let .invalidQueueDescriptors(taps, vhost): "a multiqueue NIC has \(taps) tap descriptor(s) and \(vhost) vhost-net descriptor(s): give it at least one tap descriptor and either no vhost-net descriptor or one per queue"
        case let .invalidHostMTU(mtu): "MTU \(mtu) cannot be given to a virtio NIC: it must be between \(NetworkInterfaceCard.hostMTURange.lowerBound) and \(NetworkInterfaceCard.hostMTURange.upperBound)"
        }
    }
}

/// QEMU's option-value quoting.
package enum QEMUOption {
    /// Escapes a value placed inside a `key=value,...` option: QEMU reads `,,` as a literal comma.
    package static func escape(_ value: String) -> String {
        value.replacingAll(",", with: ",,")
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        result.reserveCapacity(count)
        for character in self {
            if character == target { result += replacement } else { result.append(character) }
        }
        return result
    }
}

extension DiskImage {
    /// The descriptor numbers QEMU sees the disk's files at; empty when QEMU opens the path itself.
    package var childDescriptors: [Int32] {
        guard let firstDescriptor else { return [] }
        return files.indices.map { firstDescriptor + Int32($0) }
    }

    /// The disk's QEMU arguments. With descriptors: each file is an fd set (`-add-fd`), the disk a
    /// `-blockdev` tree naming `/dev/fdset/N` for every file (so QEMU opens no path and follows no
    /// name in a header: the backing chain and data files are stated, `backing: null` ends it), and
    /// a virtio-blk device. Without: `-drive file=PATH,if=virtio,format=F`.
    func arguments() -> [String] {
        guard let firstDescriptor else {
            return ["-drive", "file=\(QEMUOption.escape(path)),if=virtio,format=\(format.rawValue)"]
        }
        var args: [String] = []
        for number in childDescriptors { args += ["-add-fd", "fd=\(number),set=\(number)"] }
        var next = firstDescriptor
        func protocolNode(blockDevice: Bool, readOnly: Bool) -> String {
            defer { next += 1 }
            let driver = blockDevice ? "host_device" : "file"
            return "{\"driver\": \"\(driver)\", \"filename\": \"/dev/fdset/\(next)\"" + (readOnly ? ", \"read-only\": true}" : "}")
        }
        var nodes: [String] = []
        for (index, layer) in layers.enumerated() {
            var fields = ["\"driver\": \"\(layer.format.rawValue)\""]
            fields.append(index == 0 ? "\"node-name\": \"disk0\"" : "\"read-only\": true")
            fields.append("\"file\": " + protocolNode(blockDevice: layer.isBlockDevice, readOnly: index > 0))
            if layer.dataFile != nil {
                fields.append("\"data-file\": " + protocolNode(blockDevice: layer.dataFileIsBlockDevice, readOnly: index > 0))
            }
            nodes.append("{" + fields.joined(separator: ", "))
        }
        // Nest each backing layer inside the one above it; the last one has no backing (formats that
        // can have one are told so; QEMU refuses the key for the others).
        let last = layers[layers.count - 1].format
        var tree = nodes[nodes.count - 1] + ([.qcow2, .qcow, .qed, .vmdk].contains(last) ? ", \"backing\": null}" : "}")
        for node in nodes.dropLast().reversed() { tree = node + ", \"backing\": " + tree + "}" }
        args += ["-blockdev", tree, "-device", "virtio-blk-pci,drive=disk0"]
        return args
    }
}
