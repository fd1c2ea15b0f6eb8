import Foundation
import FoundationXML
import LibvirtBackend
import NetworkTypes
import QEMU
import Testing

/// The domain XML parsed back and checked element by element.
@Suite struct DomainXMLTests {
    static let mac0 = MACAddress("52:54:00:aa:bb:01")!
    static let mac1 = MACAddress("52:54:00:aa:bb:02")!

    static func configuration(accelerator: Accelerator = .tcg, extra: [String] = [], graphics: QEMUConfiguration.Graphics = .none,
                              legacy: LegacyOptions = LegacyOptions(), nics: Int = 2) -> QEMUConfiguration {
        QEMUConfiguration(accelerator: accelerator, memoryMiB: 768, vcpus: 3,
                          disk: DiskImage(path: "/image/it's <mine>.qcow2", format: .qcow2),
                          nics: [mac0, mac1].prefix(nics).enumerated().map { NetworkInterfaceCard(mac: $1, backend: .tapFileDescriptor(Int32(3 + 2 * $0), vhost: .off)) },
                          graphics: graphics, qmpSocketPath: "/run/kvm-launch/qmp.sock", name: "web-1", legacy: legacy, extraArguments: extra)
    }

    static let nics = [DomainNIC(targetDevice: "kltap0", mac: mac0, mtu: 1500), DomainNIC(targetDevice: "kltap1", mac: mac1, mtu: 9000)]

    static func parse(_ definition: DomainDefinition) throws -> XMLElement {
        let document = try XMLDocument(xmlString: definition.xml(), options: [])
        return try #require(document.rootElement())
    }

    static func nodes(_ root: XMLElement, _ path: String) throws -> [XMLElement] {
        try root.nodes(forXPath: path).compactMap { $0 as? XMLElement }
    }

    static func attribute(_ root: XMLElement, _ path: String, _ name: String) throws -> String? {
        try nodes(root, path).first?.attribute(forName: name)?.stringValue
    }

    static func text(_ root: XMLElement, _ path: String) throws -> String? {
        try nodes(root, path).first?.stringValue
    }

    /// CLOUD_INIT: the seed file is a second virtio disk after the boot disk, raw, read-only; none without one.
    @Test func theSeedIsAReadOnlyRawDiskAfterTheBootDisk() throws {
        var definition = try DomainDefinition(Self.configuration(), emulator: "/usr/bin/qemu-system-x86_64", nics: Self.nics)
        #expect(try Self.nodes(Self.parse(definition), "devices/disk").count == 1, "no seed: only the boot disk")
        definition.seedImagePath = "/run/kvm-launch/vm-0123456789abcdef/cloud-init-seed.iso"
        let disks = try Self.nodes(Self.parse(definition), "devices/disk")
        try #require(disks.count == 2)
        let seed = disks[1]
        #expect(seed.attribute(forName: "type")?.stringValue == "file")
        #expect(seed.attribute(forName: "device")?.stringValue == "disk")
        #expect(try Self.attribute(seed, "driver", "type") == "raw", "the format stated, never probed")
        #expect(try Self.attribute(seed, "source", "file") == "/run/kvm-launch/vm-0123456789abcdef/cloud-init-seed.iso")
        #expect(try Self.attribute(seed, "target", "dev") == "vdb")
        #expect(try Self.attribute(seed, "target", "bus") == "virtio")
        #expect(try Self.nodes(seed, "readonly").count == 1, "read-only")
        #expect(try Self.attribute(disks[0], "target", "dev") == "vda", "the boot disk stays first")
    }

    @Test func machineMemoryCPUsDiskAndAccelerator() throws {
        let definition = try DomainDefinition(Self.configuration(), emulator: "/usr/bin/qemu-system-x86_64", nics: Self.nics)
        let root = try Self.parse(definition)
        #expect(root.name == "domain")
        #expect(root.attribute(forName: "type")?.stringValue == "qemu", "TCG is type='qemu'")
        #expect(try Self.text(root, "name") == "web-1")
        #expect(try Self.text(root, "memory") == "768")
        #expect(try Self.attribute(root, "memory", "unit") == "MiB")
        #expect(try Self.text(root, "vcpu") == "3")
        #expect(try Self.attribute(root, "os/type", "machine") == "q35")
        #expect(try Self.attribute(root, "cpu", "mode") == "maximum")
        #expect(try Self.text(root, "devices/emulator") == "/usr/bin/qemu-system-x86_64")
        #expect(try Self.attribute(root, "devices/disk/driver", "type") == "qcow2", "the format is stated, never probed")
        #expect(try Self.attribute(root, "devices/disk/source", "file") == "/image/it's <mine>.qcow2", "escaped and read back intact")
        #expect(try Self.attribute(root, "devices/disk/target", "bus") == "virtio")
        #expect(try Self.nodes(root, "devices/serial").count == 1)
        #expect(try Self.attribute(root, "devices/console/target", "type") == "serial")
        #expect(try Self.nodes(root, "devices/video").isEmpty, "no graphics by default")
        #expect(try Self.text(root, "on_poweroff") == "destroy")

        let kvm = try Self.parse(DomainDefinition(Self.configuration(accelerator: .kvm), emulator: "/q", nics: Self.nics))
        #expect(kvm.attribute(forName: "type")?.stringValue == "kvm")
        #expect(try Self.attribute(kvm, "cpu", "mode") == "host-passthrough")
    }

    @Test func oneVirtioNICPerInterfaceInOrderWithMACAndMTU() throws {
        let root = try Self.parse(DomainDefinition(Self.configuration(), emulator: "/q", nics: Self.nics))
        let interfaces = try Self.nodes(root, "devices/interface")
        #expect(interfaces.count == 2)
        for (interface, expected) in zip(interfaces, Self.nics) {
            #expect(interface.attribute(forName: "type")?.stringValue == "ethernet")
            #expect(try Self.attribute(interface, "mac", "address") == expected.mac.description)
            #expect(try Self.attribute(interface, "target", "dev") == expected.targetDevice)
            #expect(try Self.attribute(interface, "target", "managed") == "no", "libvirt must not create or delete the link")
            #expect(try Self.attribute(interface, "model", "type") == "virtio")
            #expect(try Self.attribute(interface, "mtu", "size") == "\(expected.mtu)")
        }
    }

    /// VM_NET_QUEUES: libvirt opens a managed='no' macvtap once per queue when the driver names the queues.
    @Test func queuesBecomeTheDriversQueueCount() throws {
        let nics = [DomainNIC(targetDevice: "kltap0", mac: Self.mac0, mtu: 1500, queues: 2),
                    DomainNIC(targetDevice: "kltap1", mac: Self.mac1, mtu: 1500, queues: 1)]
        let root = try Self.parse(DomainDefinition(Self.configuration(), emulator: "/q", nics: nics))
        let interfaces = try Self.nodes(root, "devices/interface")
        try #require(interfaces.count == 2)
        #expect(try Self.attribute(interfaces[0], "driver", "queues") == "2")
        #expect(try Self.nodes(interfaces[1], "driver").isEmpty, "one queue: no driver element, as before")
    }

    /// Issue 15: NICs beyond the root bus's free slots get the direct path's multifunction addresses on
    /// pcie.0; up to the free slots no NIC has an address (libvirt places them as before).
    @Test(arguments: [28, 29, 64])
    func nicsBeyondTheRootBusGetTheDirectPathsAddresses(_ count: Int) throws {
        let macs = (0..<count).map { MACAddress([0x52, 0x54, 0, 0xaa, 0x01, UInt8($0)]) }
        let qemu = QEMUConfiguration(accelerator: .tcg, disk: DiskImage(path: "/image/d.qcow2", format: .qcow2),
                                     nics: macs.enumerated().map { NetworkInterfaceCard(mac: $1, backend: .tapFileDescriptor(Int32(3 + $0), vhost: .off)) },
                                     qmpSocketPath: "/run/q.sock")
        let layout = try qemu.nicLayout()
        #expect(layout.addresses.allSatisfy { $0 == nil } == (count <= 28))
        let nics = macs.enumerated().map { DomainNIC(targetDevice: "kltap\($0)", mac: $1, mtu: 1500) }
        let root = try Self.parse(DomainDefinition(qemu, emulator: "/q", nics: nics))
        let interfaces = try Self.nodes(root, "devices/interface")
        try #require(interfaces.count == count)
        for (index, interface) in interfaces.enumerated() {
            #expect(try Self.attribute(interface, "mac", "address") == "\(macs[index])")
            let number = { (name: String) throws -> Int? in try Self.attribute(interface, "address", name).flatMap { Int($0.dropFirst(2), radix: 16) } }
            guard let address = layout.addresses[index] else {
                #expect(try Self.nodes(interface, "address").isEmpty, "NIC \(index) keeps libvirt's own placement")
                continue
            }
            #expect(try Self.attribute(interface, "address", "type") == "pci")
            #expect(try number("bus") == 0)
            #expect(try number("slot") == address.slot)
            #expect(try number("function") == address.function)
            #expect(try Self.attribute(interface, "address", "multifunction") == (address.multifunction ? "on" : nil))
        }
    }

    @Test func commandWordsPassVerbatimInTheQEMUNamespace() throws {
        let words = ["-device", "virtio-rng-pci", "-m 512", "a'b\"c&<d>", "-smbios", "type=1,serial=x y"]
        let root = try Self.parse(DomainDefinition(Self.configuration(extra: words), emulator: "/q", nics: Self.nics))
        let arguments = try root.nodes(forXPath: "*[local-name()='commandline']/*[local-name()='arg']").compactMap { $0 as? XMLElement }
        #expect(arguments.compactMap { $0.attribute(forName: "value")?.stringValue } == words)
        let commandline = try #require(try root.nodes(forXPath: "*[local-name()='commandline']").first as? XMLElement)
        #expect(commandline.uri == DomainDefinition.qemuNamespace)

        let none = try Self.parse(DomainDefinition(Self.configuration(), emulator: "/q", nics: Self.nics))
        #expect(try none.nodes(forXPath: "*[local-name()='commandline']").isEmpty)
    }

    @Test func graphicsAndNamesAndRefusals() throws {
        let root = try Self.parse(DomainDefinition(Self.configuration(graphics: .legacyVGA), emulator: "/q", nics: Self.nics))
        #expect(try Self.attribute(root, "devices/video/model", "type") == "qxl")
        #expect(DomainDefinition.domainName(nil) == "vm")
        #expect(DomainDefinition.domainName("a/b") == "a-b")

        #expect(throws: DomainXMLError.unsupportedLegacyOption("KVM_CPU_OPTS")) {
            try DomainDefinition(Self.configuration(legacy: LegacyOptions(cpu: ["-m", "1G"])), emulator: "/q", nics: Self.nics)
        }
        #expect(throws: DomainXMLError.unsupportedLegacyOption("KVM_BLK_OPTS")) {
            try DomainDefinition(Self.configuration(legacy: LegacyOptions(block: ["-hda", "x"])), emulator: "/q", nics: Self.nics)
        }
        #expect(throws: DomainXMLError.nicCountMismatch(planned: 1, given: 2)) {
            try DomainDefinition(Self.configuration(nics: 1), emulator: "/q", nics: Self.nics)
        }
        #expect(throws: DomainXMLError.invalidTargetDevice("")) {
            try DomainDefinition(Self.configuration(nics: 1), emulator: "/q", nics: [DomainNIC(targetDevice: "", mac: Self.mac0, mtu: 1500)])
        }
    }
}

@Suite struct PrivateConfigurationTests {
    @Test func everythingLivesUnderTheRunDirectoryAndOnlyAUnixSocketListens() {
        let configuration = PrivateConfiguration(runDirectory: "/run/kvm-launch/c1")
        #expect(configuration.socketPath == "/run/kvm-launch/c1/libvirt/run/libvirt-sock")
        #expect(configuration.uri == "qemu:///system?socket=/run/kvm-launch/c1/libvirt/run/libvirt-sock")
        for bind in configuration.binds { #expect(bind.source.hasPrefix("/run/kvm-launch/c1/libvirt/")) }
        #expect(Set(configuration.binds.map(\.target)) == ["/etc/libvirt", "/run/libvirt", "/var/lib/libvirt", "/var/cache/libvirt", "/var/log/libvirt"])
        for file in configuration.files { #expect(file.path.hasPrefix("/run/kvm-launch/c1/libvirt/etc/")) }

        let settings = Self.settings(configuration.libvirtdConf)
        #expect(settings["listen_tcp"] == "0")
        #expect(settings["listen_tls"] == "0")
        #expect(!configuration.libvirtdArguments(binary: "/usr/sbin/libvirtd").contains("--listen"))
        #expect(!configuration.libvirtdArguments(binary: "/usr/sbin/libvirtd").contains("--daemon"), "a supervised child, not a daemon")

        let qemu = Self.settings(configuration.qemuConf)
        #expect(qemu["namespaces"] == "[ ]")
        #expect(qemu["cgroup_controllers"] == "[ ]")
        #expect(qemu["user"] == "\"root\"")
        #expect(qemu["remember_owner"] == "0")
        #expect(qemu["dynamic_ownership"] == "0")
        #expect(Self.settings(PrivateConfiguration(runDirectory: "/r", cgroups: true).qemuConf)["cgroup_controllers"] == nil)
    }

    static func settings(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { result[parts[0]] = parts[1] }
        }
        return result
    }
}
