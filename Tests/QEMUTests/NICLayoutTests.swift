import Testing
import NetworkTypes
import QEMU

/// Issue 15: more NICs than `pcie.0` has free slots share slots as multifunction devices, decided in
/// the pure plan; up to the free slots the command line is exactly the one before.
@Suite struct NICLayoutTests {
    private static func configuration(nics count: Int, vga: Bool = false, seed: Bool = false,
                                      machine: QEMUConfiguration.MachineType = .q35) -> QEMUConfiguration {
        let nics = (0..<count).map { (index: Int) -> NetworkInterfaceCard in
            let octets: [UInt8] = [0x02, 0, 0, 0, UInt8(index / 256), UInt8(index % 256)]
            return NetworkInterfaceCard(mac: MACAddress(octets), backend: .tapFileDescriptor(Int32(10 + index), vhost: .off))
        }
        var configuration = QEMUConfiguration(machineType: machine, accelerator: .tcg, disk: DiskImage(path: "/image/image.qcow2", format: .qcow2),
                                              nics: nics, graphics: vga ? .legacyVGA : .none, qmpSocketPath: "/run/q.sock")
        if seed { configuration.seedDescriptor = 9 }
        return configuration
    }

    /// The `-device` values of `args`.
    private static func devices(_ args: [String]) -> [String] {
        args.indices.dropLast().filter { args[$0] == "-device" }.map { args[$0 + 1] }
    }

    /// Every structural promise of a layout, for `nics` NICs with `free` root-bus slots left.
    private static func expectValid(_ layout: NICLayout, nics: Int, free: Int) {
        #expect(layout.addresses.count == nics)
        let placed = layout.addresses.compactMap { $0 }
        let shared = Set(placed.map(\.slot)).count
        let single = layout.addresses.filter { $0 == nil }.count
        // The single-function NICs (QEMU assigns their slots) and the shared slots fit the free slots.
        #expect(single + shared <= free, "\(single) NICs with a slot each and \(shared) shared slots in \(free) free slots")
        // The placed NICs are the last ones.
        #expect(layout.addresses.prefix(single).allSatisfy { $0 == nil })
        // Addresses unique, in the top slots below the chipset's slot 31, functions 0…7 contiguous from 0.
        #expect(Set(placed.map { [$0.slot, $0.function] }).count == placed.count)
        for address in placed {
            #expect((NICLayout.highestSlot - shared + 1...NICLayout.highestSlot).contains(address.slot))
            let functions = placed.filter { $0.slot == address.slot }.map(\.function)
            #expect(Set(functions) == Set(0..<functions.count))
            // A slot with several functions says so on function 0 (QEMU refuses the others otherwise).
            #expect(address.multifunction == (address.function == 0 && functions.count > 1))
        }
        // Slots fill in NIC order: slot, then function, ascending (the guest enumerates them so).
        #expect(placed == placed.sorted { ($0.slot, $0.function) < ($1.slot, $1.function) })
    }

    @Test(arguments: [(1, false, false), (28, false, false), (27, true, false), (29, false, false), (64, false, false),
                      (64, true, true), (40, false, true)])
    func placementIsValid(_ count: Int, _ vga: Bool, _ seed: Bool) throws {
        let configuration = Self.configuration(nics: count, vga: vga, seed: seed)
        let free = try #require(configuration.freePCISlotsForNICs)
        let layout = try configuration.nicLayout()
        Self.expectValid(layout, nics: count, free: free)
        #expect(layout.addresses.allSatisfy { $0 == nil } == (count <= free))

        // The command line: each placed NIC at its address with 2 vectors, the others as before.
        let nics = Self.devices(try configuration.arguments()).filter { $0.hasPrefix("virtio-net-pci,") }
        #expect(nics.count == count)
        for (index, nic) in nics.enumerated() {
            let words = nic.split(separator: ",").map(String.init)
            if let address = layout.addresses[index] {
                #expect(words.contains("bus=pcie.0") && words.contains("vectors=2"), "\(nic)")
                #expect(nic.contains(address.option))
            } else {
                #expect(!words.contains { $0.hasPrefix("bus=") || $0.hasPrefix("addr=") || $0.hasPrefix("vectors=") }, "\(nic)")
            }
        }
    }

    @Test func upToTheFreeSlotsTheCommandLineIsTheOneBefore() throws {
        let configuration = Self.configuration(nics: 28)
        let args = try configuration.arguments()
        #expect(!args.contains { $0.contains("multifunction") || $0.contains("bus=") || $0.contains("addr=") || $0.contains("vectors=") })
        #expect(Self.devices(args).filter { $0.hasPrefix("virtio-net-pci,") } == (0..<28).map { index in
            "virtio-net-pci,netdev=net\(index),mac=\(configuration.nics[index].mac)"
        })
    }

    @Test func sixtyFourNICsShareSixSlotsAtTheTop() throws {
        let configuration = Self.configuration(nics: 64)
        let layout = try configuration.nicLayout()
        // 28 free slots: 6 shared slots leave 22 NICs a slot each and put 42 in slots 25…30.
        #expect(layout.addresses.filter { $0 == nil }.count == 22)
        let placed = layout.addresses.compactMap { $0 }
        #expect(placed.count == 42)
        #expect(Set(placed.map(\.slot)) == Set(25...30))
        #expect(placed.filter { $0.slot == 30 }.count == 2, "the last slot holds the two remaining NICs")
        let devices = Self.devices(try configuration.arguments())
        #expect(devices.contains("virtio-net-pci,netdev=net22,mac=\(configuration.nics[22].mac),vectors=2,bus=pcie.0,addr=0x19.0x0,multifunction=on"))
        #expect(devices.contains("virtio-net-pci,netdev=net63,mac=\(configuration.nics[63].mac),vectors=2,bus=pcie.0,addr=0x1e.0x1"))
    }

    @Test func aboveTheMaximumIsRefusedAndSoIsAnOverfullPCMachine() {
        #expect(throws: QEMUConfigurationError.moreNICsThanSupported(count: 65, maximum: 64)) { try Self.configuration(nics: 65).arguments() }
        // i440FX has no PCI Express root ports: its free slots stay the limit.
        let pc = Self.configuration(nics: 30, machine: .pc)
        let free = pc.freePCISlotsForNICs ?? 0
        #expect(throws: QEMUConfigurationError.tooManyNICs(count: 30, slots: free, machine: "pc")) { try pc.arguments() }
        #expect(QEMUConfigurationError.moreNICsThanSupported(count: 65, maximum: 64).description.contains("at most 64"))
    }
}
