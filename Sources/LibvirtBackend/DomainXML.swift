import NetworkTypes
import QEMU

/// One guest NIC of a libvirt domain: the interface kvm-launch created (a macvtap, opened by libvirt
/// through `/dev/tap<ifindex>`), the guest's MAC and the MTU the guest is told (`host_mtu`).
package struct DomainNIC: Sendable, Equatable {
    /// The link libvirt connects the NIC to (`<target dev=… managed='no'/>`), e.g. `kltap0`.
    package var targetDevice: String
    /// The guest's MAC: the container interface's original one.
    package var mac: MACAddress
    /// The interface's MTU; passed to the guest as virtio-net's `host_mtu`.
    package var mtu: Int
    /// Queue pairs (`VM_NET_QUEUES`): above one, `<driver queues='N'/>`; libvirt then opens the
    /// macvtap once per queue with `IFF_MULTI_QUEUE` (also for a `managed='no'` target) and gives
    /// the device `mq=on` with enough vectors.
    package var queues: Int

    package init(targetDevice: String, mac: MACAddress, mtu: Int, queues: Int = 1) {
        self.targetDevice = targetDevice
        self.mac = mac
        self.mtu = mtu
        self.queues = queues
    }
}

/// A setting the libvirt backend cannot express in domain XML.
package enum DomainXMLError: Error, Equatable, CustomStringConvertible, Sendable {
    /// An old `KVM_*_OPTS` variable that replaces QEMU words libvirt generates itself.
    case unsupportedLegacyOption(String)
    /// The NIC list does not match the plan's NICs.
    case nicCountMismatch(planned: Int, given: Int)
    /// A NIC without a usable target device name.
    case invalidTargetDevice(String)
    /// The NICs do not fit the machine (``NICLayout``).
    case nicLayout(QEMUConfigurationError)

    package var description: String {
        switch self {
        case let .unsupportedLegacyOption(variable):
            "\(variable) is not supported with VM_BACKEND=libvirt (libvirt writes those QEMU options itself); unset it or use VM_BACKEND=qemu"
        case let .nicCountMismatch(planned, given):
            "the domain has \(planned) planned NICs but \(given) attached interfaces"
        case let .invalidTargetDevice(name):
            "'\(name)' is not a usable interface name for a libvirt NIC"
        case let .nicLayout(error):
            "\(error)"
        }
    }
}

/// The libvirt domain for a launch, built from the same ``QEMUConfiguration`` as the direct path
/// plus the attached interfaces. Pure: ``xml()`` is a function of these values.
///
/// The domain is what the direct path runs, in libvirt's words: the machine type, memory, vCPUs,
/// `type='kvm'` only when the accelerator decision was KVM (else `type='qemu'`, TCG), the disk with
/// its format stated, one virtio NIC per attached interface in order (`<interface type='ethernet'>`
/// on the macvtap kvm-launch made, original MAC, `<mtu>` as `host_mtu`), the cloud-init seed as a read-only
/// raw disk when there is one, the serial console, a balloon, and the container's CMD words verbatim in
/// `<qemu:commandline>`.
package struct DomainDefinition: Sendable, Equatable {
    package static let qemuNamespace = "http://libvirt.org/schemas/domain/qemu/1.0"

    package var name: String
    /// The QEMU binary (`<emulator>`), an absolute path.
    package var emulator: String
    package var accelerator: Accelerator
    package var machine: String
    package var memoryMiB: Int
    package var vcpus: Int
    /// nil: `host-passthrough` under KVM, `maximum` under TCG (the direct path's `host`/`max`).
    package var cpuModel: String?
    package var disk: DiskImage?
    package var nics: [DomainNIC]
    /// A video device model (`DISABLE_VGA=no`: qxl), nil for none.
    package var videoModel: String?
    /// The container's CMD, passed to QEMU verbatim.
    package var extraArguments: [String]
    /// The cloud-init NoCloud seed disk (ISO 9660, label `cidata`): a file given to the guest as a
    /// read-only raw virtio disk after the boot disk, as the direct path does; nil for none.
    package var seedImagePath: String?
    /// Where the NICs sit: beyond the root bus's free slots, at the same multifunction addresses on
    /// `pcie.0` as on the direct path (``NICLayout``); the others get no address, so libvirt places
    /// them as it always did (each behind a `pcie-root-port` of its own on q35).
    package var nicLayout: NICLayout

    package init(name: String, emulator: String, accelerator: Accelerator, machine: String = "q35", memoryMiB: Int, vcpus: Int,
                cpuModel: String? = nil, disk: DiskImage?, nics: [DomainNIC], videoModel: String? = nil, extraArguments: [String] = []) {
        self.name = name
        self.emulator = emulator
        self.accelerator = accelerator
        self.machine = machine
        self.memoryMiB = memoryMiB
        self.vcpus = vcpus
        self.cpuModel = cpuModel
        self.disk = disk
        self.nics = nics
        self.videoModel = videoModel
        self.extraArguments = extraArguments
        self.nicLayout = NICLayout(addresses: Array(repeating: nil, count: nics.count))
    }

    /// The definition for what `qemu` describes, with `nics` (one per planned NIC, same order).
    /// The old `KVM_*_OPTS` words cannot be mapped onto libvirt's own options and are refused.
    package init(_ qemu: QEMUConfiguration, emulator: String, nics: [DomainNIC]) throws(DomainXMLError) {
        if qemu.legacy.cpu != nil { throw .unsupportedLegacyOption("KVM_CPU_OPTS") }
        if qemu.legacy.block != nil { throw .unsupportedLegacyOption("KVM_BLK_OPTS") }
        if qemu.legacy.video != nil { throw .unsupportedLegacyOption("KVM_VIDEO_OPTS") }
        if qemu.legacy.base != nil { throw .unsupportedLegacyOption("KVM_OPTS") }
        guard nics.count == qemu.nics.count else { throw .nicCountMismatch(planned: qemu.nics.count, given: nics.count) }
        for nic in nics where nic.targetDevice.isEmpty || nic.targetDevice.count > 15 || nic.targetDevice.contains("/") {
            throw .invalidTargetDevice(nic.targetDevice)
        }
        var video: String?
        if case let .vga(model, _) = qemu.graphics { video = model }
        self.init(name: Self.domainName(qemu.name), emulator: emulator, accelerator: qemu.accelerator, machine: qemu.machineType.name,
                  memoryMiB: qemu.memoryMiB, vcpus: qemu.vcpus, cpuModel: qemu.cpuModel, disk: qemu.disk, nics: nics,
                  videoModel: video, extraArguments: qemu.extraArguments)
        do throws(QEMUConfigurationError) {
            nicLayout = try qemu.nicLayout()
        } catch {
            throw .nicLayout(error)
        }
    }

    /// A libvirt-safe domain name from the host name (libvirt refuses `/`; empty becomes `vm`).
    package static func domainName(_ name: String?) -> String {
        let cleaned = String((name ?? "").map { $0 == "/" || $0.isNewline ? "-" : $0 })
        return cleaned.isEmpty ? "vm" : cleaned
    }

    /// The domain XML.
    package func xml() -> String {
        var lines: [String] = []
        func add(_ depth: Int, _ text: String) { lines.append(String(repeating: "  ", count: depth) + text) }
        let type = accelerator == .kvm ? "kvm" : "qemu"
        add(0, "<domain type='\(type)' xmlns:qemu='\(Self.qemuNamespace)'>")
        add(1, "<name>\(escape(name))</name>")
        add(1, "<memory unit='MiB'>\(memoryMiB)</memory>")
        add(1, "<vcpu>\(vcpus)</vcpu>")
        add(1, "<os>")
        add(2, "<type arch='x86_64' machine='\(escape(machine))'>hvm</type>")
        add(2, "<boot dev='hd'/>")
        add(1, "</os>")
        add(1, "<features><acpi/><apic/></features>")
        if let cpuModel {
            add(1, "<cpu mode='custom' match='exact'><model fallback='allow'>\(escape(cpuModel))</model></cpu>")
        } else {
            add(1, accelerator == .kvm ? "<cpu mode='host-passthrough'/>" : "<cpu mode='maximum'/>")
        }
        add(1, "<on_poweroff>destroy</on_poweroff>")
        add(1, "<on_reboot>restart</on_reboot>")
        add(1, "<on_crash>destroy</on_crash>")
        add(1, "<devices>")
        add(2, "<emulator>\(escape(emulator))</emulator>")
        if let disk {
            let block = disk.layers.first?.isBlockDevice ?? false
            add(2, "<disk type='\(block ? "block" : "file")' device='disk'>")
            add(3, "<driver name='qemu' type='\(disk.format.rawValue)'/>")
            add(3, block ? "<source dev='\(escape(disk.path))'/>" : "<source file='\(escape(disk.path))'/>")
            add(3, "<target dev='vda' bus='virtio'/>")
            add(2, "</disk>")
        }
        if let seedImagePath {
            add(2, "<disk type='file' device='disk'>")
            add(3, "<driver name='qemu' type='raw'/>")
            add(3, "<source file='\(escape(seedImagePath))'/>")
            add(3, "<target dev='vdb' bus='virtio'/>")
            add(3, "<readonly/>")
            add(2, "</disk>")
        }
        add(2, "<controller type='usb' model='none'/>")
        for (position, nic) in nics.enumerated() {
            add(2, "<interface type='ethernet'>")
            add(3, "<mac address='\(nic.mac)'/>")
            if position < nicLayout.addresses.count, let address = nicLayout.addresses[position] {
                add(3, "<address type='pci' domain='0x0000' bus='0x00' slot='\(Self.hex(address.slot))' function='\(Self.hex(address.function))'"
                    + (address.multifunction ? " multifunction='on'/>" : "/>"))
            }
            add(3, "<target dev='\(escape(nic.targetDevice))' managed='no'/>")
            add(3, "<model type='virtio'/>")
            if nic.queues > 1 { add(3, "<driver queues='\(nic.queues)'/>") }
            add(3, "<mtu size='\(nic.mtu)'/>")
            add(2, "</interface>")
        }
        add(2, "<serial type='pty'><target port='0'/></serial>")
        add(2, "<console type='pty'><target type='serial' port='0'/></console>")
        if let videoModel {
            add(2, "<video><model type='\(escape(videoModel))'/></video>")
        }
        add(2, "<memballoon model='virtio'/>")
        add(1, "</devices>")
        if !extraArguments.isEmpty {
            add(1, "<qemu:commandline>")
            for argument in extraArguments { add(2, "<qemu:arg value='\(escape(argument))'/>") }
            add(1, "</qemu:commandline>")
        }
        add(0, "</domain>")
        return lines.joined(separator: "\n") + "\n"
    }

    static func hex(_ value: Int) -> String { "0x" + (value < 16 ? "0" : "") + String(value, radix: 16) }

    /// Escapes text for an XML attribute in single quotes or for element content.
    func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "'": out += "&apos;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }
}
