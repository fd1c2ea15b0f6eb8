/// Where the NICs sit on the machine's PCI Express root bus: decided here, in the pure plan, so
/// `--dry-run --json` shows it and the libvirt domain gets the same layout.
///
/// Up to the free slots of the root bus (``QEMUConfiguration/freePCISlotsForNICs``, 28 on a plain
/// q35 machine) every NIC is a device on `pcie.0` whose slot QEMU assigns, exactly as before this
/// layout existed. Beyond that (q35 only) the last NICs share slots as the functions of
/// multifunction devices, eight per slot, in the highest free slots of `pcie.0` (just below the
/// ICH9 functions in slot 31), so the slots QEMU assigns from the bottom up to the other devices stay
/// where they were. Each such slot takes one slot away from the single-function NICs, so `k` shared
/// slots make room for `free + 7·k` NICs.
///
/// Why functions on the root bus and not a `pcie-root-port` per NIC (libvirt's default for a
/// hot-pluggable device): what runs out first is not slots but the guest's interrupt vectors. An x86
/// guest has about 200 device vectors per vCPU; a virtio-net NIC asks for 3 (configuration, receive,
/// transmit) and every root port for 1 more (its PME/AER/hot-plug services). A one-vCPU test guest
/// with 64 NICs behind 42 root ports failed to probe 13 NICs and its disk (`-ENOSPC`). Functions on
/// `pcie.0` need no port, and the shared-slot NICs get 2 MSI-X vectors (`vectors=2`: the guest then
/// shares one vector between the receive and transmit queues), so 64 NICs need about 150 vectors.
/// Nothing on the root bus is hot-pluggable on q35, which the NICs never were.
package struct NICLayout: Sendable, Equatable {
    /// The most NICs kvm-launch gives one VM: what a one-vCPU guest's interrupt vectors hold with room
    /// for the disk, the seed, the balloon and the chipset (see the type's documentation).
    package static let maximumNICs = 64
    /// The slot below the q35 chipset's (ICH9 LPC, SATA and SMBus in slot 31): the last shared slot.
    package static let highestSlot = 30
    /// NICs per shared slot: the eight functions of a multifunction device.
    package static let functionsPerSlot = 8
    /// MSI-X vectors of a single-queue NIC in a shared slot (QEMU's default for virtio-net is 3).
    package static let sharedSlotVectors = 2

    /// A NIC's fixed address on `pcie.0`.
    package struct Address: Sendable, Equatable, Hashable {
        package var slot: Int
        package var function: Int
        /// Set on function 0 of a slot that holds more than one function (QEMU refuses the others otherwise).
        package var multifunction: Bool

        package init(slot: Int, function: Int, multifunction: Bool) {
            self.slot = slot
            self.function = function
            self.multifunction = multifunction
        }

        /// `addr=0xSS.0xF[,multifunction=on]`, QEMU's words.
        package var option: String {
            "addr=0x\(String(slot, radix: 16)).0x\(String(function, radix: 16))" + (multifunction ? ",multifunction=on" : "")
        }
    }

    /// For each NIC, in order: nil when QEMU assigns its slot on the root bus (as always), else its address.
    package var addresses: [Address?]

    package init(addresses: [Address?]) {
        self.addresses = addresses
    }

    /// The layout for `nics` NICs when `free` slots of `pcie.0` are left for them on a `machine`
    /// (nil `free`: a named machine type whose slots are unknown; nothing is placed).
    package static func plan(nics: Int, free: Int?, machine: QEMUConfiguration.MachineType) throws(QEMUConfigurationError) -> NICLayout {
        guard let free, nics > free else { return NICLayout(addresses: Array(repeating: nil, count: nics)) }
        guard case .q35 = machine else { throw .tooManyNICs(count: nics, slots: free, machine: machine.name) }
        guard nics <= maximumNICs else { throw .moreNICsThanSupported(count: nics, maximum: maximumNICs) }
        // k shared slots: free − k NICs keep a slot of their own, 8·k share.
        var shared = 1
        while free - shared + functionsPerSlot * shared < nics { shared += 1 }
        guard shared <= free else { throw .tooManyNICs(count: nics, slots: free, machine: machine.name) }
        let single = free - shared
        let grouped = nics - single
        let firstSlot = highestSlot - shared + 1
        let addresses = (0..<grouped).map { index -> Address? in
            let slot = firstSlot + index / functionsPerSlot
            let function = index % functionsPerSlot
            let inSlot = min(functionsPerSlot, grouped - (slot - firstSlot) * functionsPerSlot)
            return Address(slot: slot, function: function, multifunction: function == 0 && inSlot > 1)
        }
        return NICLayout(addresses: Array(repeating: nil, count: single) + addresses)
    }
}

extension QEMUConfiguration {
    /// Where this configuration's NICs sit (``NICLayout``); throws when they cannot all be placed.
    package func nicLayout() throws(QEMUConfigurationError) -> NICLayout {
        try NICLayout.plan(nics: nics.count, free: freePCISlotsForNICs, machine: machineType)
    }
}
