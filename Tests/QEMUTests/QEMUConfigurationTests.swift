import Testing
import NetworkTypes
import QEMU

private let mac0 = MACAddress("02:42:ac:11:00:02")!
private let mac1 = MACAddress("02:42:ac:12:00:05")!

private func baseConfiguration(_ accelerator: Accelerator = .tcg) -> QEMUConfiguration {
    QEMUConfiguration(
        accelerator: accelerator,
        disk: DiskImage(path: "/image/image.qcow2", format: .qcow2),
        qmpSocketPath: "/run/kvm-launch/qmp.sock"
    )
}

/// The value following `option` in `args`, for each occurrence.
private func values(of option: String, in args: [String]) -> [String] {
    args.indices.dropLast().filter { args[$0] == option }.map { args[$0 + 1] }
}

@Suite struct QEMUConfigurationTests {
    @Test func defaultArgumentsForOneDiskAndNoNetwork() throws {
        let args = try baseConfiguration().arguments()
        #expect(args == [
            "-nodefaults", "-no-user-config",
            "-machine", "type=q35,accel=tcg",
            "-m", "1024", "-smp", "1", "-cpu", "max",
            "-device", "virtio-balloon-pci,id=balloon0",
            "-drive", "file=/image/image.qcow2,if=virtio,format=qcow2",
            "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
            "-display", "none",
            "-chardev", "socket,id=qmp,path=/run/kvm-launch/qmp.sock,server=on,wait=off",
            "-mon", "chardev=qmp,mode=control",
        ])
    }

    @Test func kvmUsesTheHostCPUAndTCGTheMaxModel() throws {
        #expect(values(of: "-cpu", in: try baseConfiguration(.kvm).arguments()) == ["host"])
        #expect(values(of: "-machine", in: try baseConfiguration(.kvm).arguments()) == ["type=q35,accel=kvm"])
        var configuration = baseConfiguration(.kvm)
        configuration.cpuModel = "Skylake-Server"
        #expect(values(of: "-cpu", in: try configuration.arguments()) == ["Skylake-Server"])
    }

    @Test func memoryVCPUsAndMachineType() throws {
        var configuration = baseConfiguration()
        configuration.memoryMiB = 4096
        configuration.vcpus = 4
        configuration.machineType = .pc
        configuration.name = "web,1"
        let args = try configuration.arguments()
        #expect(values(of: "-m", in: args) == ["4096"])
        #expect(values(of: "-smp", in: args) == ["4"])
        #expect(values(of: "-machine", in: args) == ["type=pc,accel=tcg"])
        #expect(values(of: "-name", in: args) == ["web,,1"])
    }

    @Test func nicsAreNumberedInOrderWithTheirMACAndBackend() throws {
        var configuration = baseConfiguration()
        configuration.nics = [
            NetworkInterfaceCard(mac: mac0, backend: .tapFileDescriptor(3, vhost: .fileDescriptor(4))),
            NetworkInterfaceCard(mac: mac1, backend: .tapFileDescriptor(5, vhost: .off)),
            NetworkInterfaceCard(mac: mac0, backend: .tapFileDescriptor(6, vhost: .on)),
            NetworkInterfaceCard(mac: mac1, backend: .tapDevice("tap-eth1", vhost: true)),
            NetworkInterfaceCard(mac: mac1, backend: .tapDevice("tap-eth2", vhost: false)),
        ]
        let args = try configuration.arguments()
        #expect(values(of: "-netdev", in: args) == [
            "tap,id=net0,fd=3,vhost=on,vhostfd=4",
            "tap,id=net1,fd=5",
            "tap,id=net2,fd=6,vhost=on",
            "tap,id=net3,ifname=tap-eth1,script=no,downscript=no,vhost=on",
            "tap,id=net4,ifname=tap-eth2,script=no,downscript=no",
        ])
        #expect(values(of: "-device", in: args).filter { $0.hasPrefix("virtio-net-pci") } == [
            "virtio-net-pci,netdev=net0,mac=02:42:ac:11:00:02",
            "virtio-net-pci,netdev=net1,mac=02:42:ac:12:00:05",
            "virtio-net-pci,netdev=net2,mac=02:42:ac:11:00:02",
            "virtio-net-pci,netdev=net3,mac=02:42:ac:12:00:05",
            "virtio-net-pci,netdev=net4,mac=02:42:ac:12:00:05",
        ])
        #expect(configuration.childFileDescriptors == [3, 4, 5, 6])
    }

    @Test func descriptorNumbersMustBeFreeAndUnique() {
        var configuration = baseConfiguration()
        configuration.nics = [NetworkInterfaceCard(mac: mac0, backend: .tapFileDescriptor(2, vhost: .off))]
        #expect(throws: QEMUConfigurationError.reservedFileDescriptor(2)) { try configuration.arguments() }
        configuration.nics = [
            NetworkInterfaceCard(mac: mac0, backend: .tapFileDescriptor(3, vhost: .fileDescriptor(4))),
            NetworkInterfaceCard(mac: mac1, backend: .tapFileDescriptor(4, vhost: .off)),
        ]
        #expect(throws: QEMUConfigurationError.duplicateFileDescriptor(4)) { try configuration.arguments() }
        configuration.nics = [NetworkInterfaceCard(mac: mac0, backend: .tapDevice("a,b", vhost: false))]
        #expect(throws: QEMUConfigurationError.invalidTapName("a,b")) { try configuration.arguments() }
    }

    @Test func rejectsNonPositiveSizes() {
        var configuration = baseConfiguration()
        configuration.memoryMiB = 0
        #expect(throws: QEMUConfigurationError.invalidMemory(0)) { try configuration.arguments() }
        configuration.memoryMiB = 512
        configuration.vcpus = -1
        #expect(throws: QEMUConfigurationError.invalidVCPUs(-1)) { try configuration.arguments() }
    }

    @Test func commandArgumentsAreAppendedVerbatimAndLast() throws {
        var configuration = baseConfiguration()
        let cmd = ["-append", "console=ttyS0 root=/dev/vda1", "it's \"quoted\"", "$HOME", "; rm -rf /", "", "a\\b"]
        configuration.extraArguments = cmd
        let args = try configuration.arguments()
        #expect(Array(args.suffix(cmd.count)) == cmd)
        #expect(args.count == (try baseConfiguration().arguments()).count + cmd.count)
    }

    @Test func commasInPathsAreEscapedForQEMU() throws {
        var configuration = baseConfiguration()
        configuration.disk = DiskImage(path: "/image/a,b.img", format: .raw)
        configuration.qmpSocketPath = "/run/x,y/qmp.sock"
        let args = try configuration.arguments()
        #expect(values(of: "-drive", in: args) == ["file=/image/a,,b.img,if=virtio,format=raw"])
        #expect(values(of: "-chardev", in: args).last == "socket,id=qmp,path=/run/x,,y/qmp.sock,server=on,wait=off")
    }

    @Test func noDiskMeansNoDrive() throws {
        var configuration = baseConfiguration()
        configuration.disk = nil
        #expect(!(try configuration.arguments()).contains("-drive"))
    }

    @Test func graphicsAddAVGADeviceAndOptionalVNC() throws {
        var configuration = baseConfiguration()
        configuration.graphics = .legacyVGA
        var args = try configuration.arguments()
        #expect(values(of: "-vga", in: args) == ["qxl"])
        #expect(values(of: "-display", in: args) == ["none"])
        #expect(!args.contains("-vnc"))

        configuration.graphics = .vga(model: "std", vnc: "unix:/run/kvm-launch/vnc.sock")
        args = try configuration.arguments()
        #expect(values(of: "-vga", in: args) == ["std"])
        #expect(values(of: "-vnc", in: args) == ["unix:/run/kvm-launch/vnc.sock"])
    }

    @Test func legacyCPUOptionsReplaceMemoryVCPUsAndCPUModel() throws {
        var configuration = baseConfiguration()
        configuration.memoryMiB = 4096
        configuration.legacy.cpu = ["-m", "2048", "-smp", "4,sockets=4,cores=1,threads=1"]
        let args = try configuration.arguments()
        #expect(values(of: "-m", in: args) == ["2048"])
        #expect(values(of: "-smp", in: args) == ["4,sockets=4,cores=1,threads=1"])
        #expect(values(of: "-cpu", in: args).isEmpty)
    }

    @Test func legacyBlockVideoAndBaseOptionsReplaceTheirDefaults() throws {
        var configuration = baseConfiguration()
        configuration.legacy = LegacyOptions(
            block: ["-drive", "if=virtio,file=/image/image"],
            video: ["-vga", "std", "-vnc", ":1"],
            base: ["-msg", "timestamp=on"]
        )
        let args = try configuration.arguments()
        #expect(values(of: "-drive", in: args) == ["if=virtio,file=/image/image"])
        #expect(values(of: "-display", in: args).isEmpty)
        #expect(values(of: "-vnc", in: args) == [":1"])
        #expect(!args.contains("virtio-balloon-pci,id=balloon0"))
        #expect(values(of: "-msg", in: args) == ["timestamp=on"])
        // What supervision needs is never replaced.
        #expect(args.starts(with: ["-nodefaults", "-no-user-config"]))
        #expect(args.contains("stdio,id=console,signal=off"))
        #expect(args.contains("chardev=qmp,mode=control"))
    }

    @Test func errorDescriptionsAreOneLine() {
        let errors: [QEMUConfigurationError] = [
            .invalidMemory(0), .invalidVCPUs(0), .emptyQMPSocketPath,
            .reservedFileDescriptor(1), .duplicateFileDescriptor(3), .invalidTapName(""),
        ]
        for error in errors { #expect(!error.description.contains("\n") && error.description.contains(":")) }
    }

    @Test func anAbstractQMPSocketIsNamedWithoutAFile() throws {
        var configuration = baseConfiguration()
        configuration.qmpSocketPath = "@kvm-launch/qmp/pidns-4026531836"
        #expect(values(of: "-chardev", in: try configuration.arguments()).last
                == "socket,id=qmp,path=kvm-launch/qmp/pidns-4026531836,abstract=on,server=on,wait=off")
        configuration.qmpSocketPath = "@a,b"
        #expect(values(of: "-chardev", in: try configuration.arguments()).last == "socket,id=qmp,path=a,,b,abstract=on,server=on,wait=off")
        configuration.qmpSocketPath = "@"
        #expect(throws: QEMUConfigurationError.emptyQMPSocketPath) { try configuration.arguments() }
        configuration.qmpSocketPath = "@" + String(repeating: "q", count: 108)
        #expect(throws: QEMUConfigurationError.socketPathTooLong(configuration.qmpSocketPath)) { try configuration.arguments() }
        configuration.qmpSocketPath = "/" + String(repeating: "q", count: 107)
        #expect(throws: QEMUConfigurationError.socketPathTooLong(configuration.qmpSocketPath)) { try configuration.arguments() }
    }

    @Test func everyNICCarriesItsMTUAsHostMTU() throws {
        var configuration = baseConfiguration()
        configuration.nics = [
            NetworkInterfaceCard(mac: mac0, backend: .tapFileDescriptor(3, vhost: .off), hostMTU: 9000),
            NetworkInterfaceCard(mac: mac1, backend: .tapFileDescriptor(4, vhost: .off), hostMTU: 1450),
            NetworkInterfaceCard(mac: mac1, backend: .tapFileDescriptor(5, vhost: .off)),
        ]
        #expect(values(of: "-device", in: try configuration.arguments()).filter { $0.hasPrefix("virtio-net") } == [
            "virtio-net-pci,netdev=net0,mac=02:42:ac:11:00:02,host_mtu=9000",
            "virtio-net-pci,netdev=net1,mac=02:42:ac:12:00:05,host_mtu=1450",
            "virtio-net-pci,netdev=net2,mac=02:42:ac:12:00:05",
        ])
        for bad in [0, 67, 65536] {
            configuration.nics[0].hostMTU = bad
            #expect(throws: QEMUConfigurationError.invalidHostMTU(bad)) { try configuration.arguments() }
        }
    }

}

/// Multiqueue virtio-net (`VM_NET_QUEUES`): one tap descriptor per queue, vhost-net per queue.
@Suite struct MultiqueueNICTests {
    @Test func queuesBecomeFdsListAndMultiqueueDevice() throws {
        var configuration = baseConfiguration()
        configuration.nics = [
            NetworkInterfaceCard(mac: mac0, backend: .tapQueueDescriptors([3, 4], vhost: [5, 6]), hostMTU: 1500),
            NetworkInterfaceCard(mac: mac1, backend: .tapQueueDescriptors([7, 8, 9, 10], vhost: []), hostMTU: 9000),
            NetworkInterfaceCard(mac: mac1, backend: .tapFileDescriptor(15, vhost: .off), hostMTU: 1500),
        ]
        let args = try configuration.arguments()
        #expect(values(of: "-netdev", in: args) == [
            "tap,id=net0,fds=3:4,vhost=on,vhostfds=5:6",
            "tap,id=net1,fds=7:8:9:10",
            "tap,id=net2,fd=15",
        ])
        // mq=on with one MSI-X vector per virtqueue (2 per queue pair) plus control and configuration.
        #expect(values(of: "-device", in: args).filter { $0.hasPrefix("virtio-net-pci") } == [
            "virtio-net-pci,netdev=net0,mac=\(mac0),host_mtu=1500,mq=on,vectors=6",
            "virtio-net-pci,netdev=net1,mac=\(mac1),host_mtu=9000,mq=on,vectors=10",
            "virtio-net-pci,netdev=net2,mac=\(mac1),host_mtu=1500",
        ])
        #expect(configuration.childFileDescriptors == [3, 4, 5, 6, 7, 8, 9, 10, 15] + (configuration.disk?.childDescriptors ?? []))
    }

    @Test func oneQueueListIsNotMultiqueue() throws {
        var configuration = baseConfiguration()
        configuration.nics = [NetworkInterfaceCard(mac: mac0, backend: .tapQueueDescriptors([3], vhost: []))]
        let args = try configuration.arguments()
        #expect(values(of: "-netdev", in: args) == ["tap,id=net0,fds=3"])
        #expect(!values(of: "-device", in: args).contains { $0.contains("mq=on") })
    }

    @Test func queueDescriptorsMustBeConsistentAndUnique() {
        var configuration = baseConfiguration()
        configuration.nics = [NetworkInterfaceCard(mac: mac0, backend: .tapQueueDescriptors([], vhost: []))]
        #expect(throws: QEMUConfigurationError.invalidQueueDescriptors(taps: 0, vhost: 0)) { try configuration.arguments() }
        configuration.nics = [NetworkInterfaceCard(mac: mac0, backend: .tapQueueDescriptors([3, 4], vhost: [5]))]
        #expect(throws: QEMUConfigurationError.invalidQueueDescriptors(taps: 2, vhost: 1)) { try configuration.arguments() }
        configuration.nics = [
            NetworkInterfaceCard(mac: mac0, backend: .tapQueueDescriptors([3, 4], vhost: [])),
            NetworkInterfaceCard(mac: mac1, backend: .tapFileDescriptor(4, vhost: .off)),
        ]
        #expect(throws: QEMUConfigurationError.duplicateFileDescriptor(4)) { try configuration.arguments() }
        #expect(!QEMUConfigurationError.invalidQueueDescriptors(taps: 2, vhost: 1).description.contains("\n"))
    }
}
