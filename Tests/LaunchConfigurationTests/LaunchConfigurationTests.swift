import Testing
import NetworkTypes
@testable import LaunchConfiguration

@Suite struct BooleanParsingTests {
    @Test(arguments: ["yes", "YES", "Yes", "y", "Y", "true", "TRUE", "1", "on", " yes "])
    func acceptsTrue(_ value: String) throws {
        let config = try LaunchConfiguration(environment: ["AUTO_ATTACH": value])
        #expect(config.selection == .automatic)
    }

    @Test(arguments: ["no", "NO", "n", "false", "False", "0", "off"])
    func acceptsFalse(_ value: String) throws {
        let config = try LaunchConfiguration(environment: ["AUTO_ATTACH": value, "ATTACH_IFACES": "eth0"])
        #expect(config.selection == .named(["eth0"]))
    }

    @Test(arguments: ["maybe", "2", "yess", "tru", "-1"])
    func rejectsOthersNamingVariableAndValue(_ value: String) {
        #expect {
            try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "USE_NET_BRIDGES": value])
        } throws: { error in
            let text = "\(error)"
            return text.contains("USE_NET_BRIDGES") && text.contains("\"\(value)\"") && text.contains("yes or no")
        }
    }
}

@Suite struct SelectionTests {
    @Test func autoAttachIsMandatory() {
        #expect(throws: ConfigurationError.self) { try LaunchConfiguration(environment: [:]) }
        #expect(throws: ConfigurationError.self) { try LaunchConfiguration(environment: ["AUTO_ATTACH": ""]) }
    }

    @Test func listingDoesNotNeedAutoAttach() throws {
        let config = try LaunchConfiguration(environment: [:], requireSelection: false)
        #expect(config.selection == nil)
        #expect(!config.canLaunch)
    }

    @Test func namedInterfacesKeepOrderAndAcceptSpacesOrCommas() throws {
        let spaces = try LaunchConfiguration(environment: ["AUTO_ATTACH": "no", "ATTACH_IFACES": "eth2 eth0"])
        #expect(spaces.selection == .named(["eth2", "eth0"]))
        let commas = try LaunchConfiguration(environment: ["AUTO_ATTACH": "no", "ATTACH_IFACES": "eth1,eth0, eth3"])
        #expect(commas.selection == .named(["eth1", "eth0", "eth3"]))
    }

    @Test func noInterfacesMeansNoNIC() throws {
        let config = try LaunchConfiguration(environment: ["AUTO_ATTACH": "no"])
        #expect(config.selection == .named([]))
    }

    @Test func duplicateAndInvalidNamesAreErrors() {
        #expect {
            try LaunchConfiguration(environment: ["AUTO_ATTACH": "no", "ATTACH_IFACES": "eth0 eth0 a/b averyveryverylongname"])
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.problems.count == 3 && error.problems.allSatisfy { $0.variable == "ATTACH_IFACES" }
        }
    }

    @Test func attachIfacesWithAutoAttachYesWarns() throws {
        let config = try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "ATTACH_IFACES": "eth0"])
        #expect(config.warnings.contains { $0.contains("ATTACH_IFACES is ignored") })
    }
}

@Suite struct VariableTests {
    @Test func defaults() throws {
        let config = try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes"])
        #expect(config.networkMode == .macvtap)
        #expect(config.dhcpEnabled)
        #expect(!config.debug)
        #expect(!config.graphics)
        #expect(config.memoryMiB == 1024)
        #expect(config.cpus == 1)
        #expect(config.acceleration == .auto)
        #expect(config.containerSideAddress == .linkLocal)
        #expect(config.dnsServers == nil)
        #expect(config.warnings.isEmpty)
    }

    @Test func everyVariableIsHonoured() throws {
        let config = try LaunchConfiguration(environment: [
            "AUTO_ATTACH": "yes", "SELECTED_NETWORK": "10.42.0.7/16", "USE_NET_BRIDGES": "true",
            "ENABLE_DHCP": "n", "DEBUG": "1", "DISABLE_VGA": "no", "DNS_SERVERS": "1.1.1.1, 9.9.9.9",
            "LAUNCHER": "/usr/bin/qemu-system-x86_64", "VM_MEMORY": "2G", "VM_CPUS": "4", "VM_ACCEL": "TCG",
            "VM_IMAGE": "/data/disk.qcow2", "VM_SHUTDOWN_TIMEOUT": "50", "VM_HOSTNAME": "vm1",
            "CONTAINER_SIDE_ADDRESS": "widen-prefix", "KVM_OPTS": "-rtc base=utc -name 'my vm'",
            "KVM_CPU_OPTS": "-m 512 -smp 2", "KVM_BLK_OPTS": "-drive file=/image/x,if=virtio",
            "KVM_VIDEO_OPTS": "-vga std",
        ], arguments: ["-device", "virtio-rng-pci"])
        #expect(config.selectedNetwork == IPv4Interface("10.42.0.7/16"))
        #expect(config.networkMode == .bridge)
        #expect(!config.dhcpEnabled)
        #expect(config.debug)
        #expect(config.graphics)
        #expect(config.dnsServers == [IPv4Address(1, 1, 1, 1), IPv4Address(9, 9, 9, 9)])
        #expect(config.qemuBinary == "/usr/bin/qemu-system-x86_64")
        #expect(config.memoryMiB == 2048)
        #expect(config.cpus == 4)
        #expect(config.acceleration == .tcg)
        #expect(config.imagePath == "/data/disk.qcow2")
        #expect(config.shutdownTimeoutSeconds == 50)
        #expect(config.hostname == "vm1")
        #expect(config.containerSideAddress == .widenPrefix)
        #expect(config.legacy.kvmOptions == ["-rtc", "base=utc", "-name", "my vm"])
        #expect(config.legacy.cpuOptions == ["-m", "512", "-smp", "2"])
        #expect(config.legacy.blockOptions == ["-drive", "file=/image/x,if=virtio"])
        #expect(config.legacy.videoOptions == ["-vga", "std"])
        #expect(config.extraArguments == ["-device", "virtio-rng-pci"])
    }

    @Test(arguments: ["10.42.0.7", "10.42.0.7/33", "fd00::1", "fd00::1/129", "net", "10.42.0/16", ",",
                      "10.0.0.0/8 10.1.0.0/16", "fd00::/8,fd01::/16", "10.0.0.0/8 fe80::1%eth0/64"])
    func selectedNetworkMustBeOneIPv4AndOrOneIPv6WithPrefix(_ value: String) {
        #expect {
            try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "SELECTED_NETWORK": value])
        } throws: { "\($0)".contains("SELECTED_NETWORK") && "\($0)".contains("ADDR/PREFIX") }
    }

    static let bothFamilies: [(String, String?, String?)] = [
        ("fd00:1::/64", nil, "fd00:1::/64"), ("10.42.0.0/16,fd00:1::/64", "10.42.0.0/16", "fd00:1::/64"),
        ("fd00:1::/64 10.42.0.0/16", "10.42.0.0/16", "fd00:1::/64"), ("10.42.0.0/16", "10.42.0.0/16", nil)]

    @Test(arguments: bothFamilies)
    func selectedNetworkTakesAnIPv6PrefixForTheIPv6Choice(_ value: String, v4: String?, v6: String?) throws {
        let config = try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "SELECTED_NETWORK": value])
        #expect(config.selectedNetwork?.description == v4)
        #expect(config.selectedNetworkIPv6?.description == v6)
    }

    @Test func loopbackDNSServersAreRefusedWithAReason() {
        #expect {
            try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "DNS_SERVERS": "127.0.0.11"])
        } throws: { "\($0)".contains("cannot reach") }
    }

    @Test func kvmNetOptsSaysWhatReplacedIt() {
        #expect {
            try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "KVM_NET_OPTS": "-netdev bridge,br=br0,id=net0"])
        } throws: { "\($0)".contains("KVM_NET_OPTS is no longer used") && "\($0)".contains("CMD") }
    }

    @Test func dnsmasqOptsIsIgnoredWithAWarning() throws {
        let config = try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "DNSMASQ_OPTS": "--log-dhcp"])
        #expect(config.warnings.count == 1)
        #expect(config.warnings[0].contains("DNS_SERVERS"))
    }

    @Test func launcherMustBeOneBinary() {
        #expect(throws: ConfigurationError.self) {
            try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "LAUNCHER": "qemu-kvm -enable-kvm"])
        }
    }

    @Test func everyProblemIsReportedAtOnce() {
        #expect {
            try LaunchConfiguration(environment: [
                "USE_NET_BRIDGES": "perhaps", "SELECTED_NETWORK": "x", "VM_MEMORY": "lots", "VM_CPUS": "0",
                "VM_ACCEL": "hvf", "KVM_CPU_OPTS": "-name 'unterminated", "VM_IMAGE": "relative.qcow2",
            ])
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            let variables = Set(error.problems.map(\.variable))
            return variables == ["AUTO_ATTACH", "USE_NET_BRIDGES", "SELECTED_NETWORK", "VM_MEMORY", "VM_CPUS",
                                 "VM_ACCEL", "KVM_CPU_OPTS", "VM_IMAGE"]
                && !error.description.contains("\n")
                && error.description.hasPrefix("invalid configuration (8 problems): ")
        }
    }
}

@Suite struct MemoryAndWordsTests {
    @Test(arguments: [("2048", 2048), ("512M", 512), ("512MB", 512), ("2G", 2048), ("2GiB", 2048), ("1t", 1_048_576)])
    func memorySizes(_ text: String, _ expected: Int) {
        #expect(LaunchConfiguration.parseMemory(text) == expected)
    }

    @Test(arguments: ["", "G", "10", "2X", "-1G", "99999999999999999999T"])
    func badMemorySizes(_ text: String) {
        #expect(LaunchConfiguration.parseMemory(text) == nil)
    }

    @Test func wordsFollowShellQuoting() throws {
        #expect(try ShellWords.split(#"-a "b c" 'd "e"' f\ g"#) == ["-a", "b c", #"d "e""#, "f g"])
        #expect(try ShellWords.split("  ") == [])
        #expect(try ShellWords.split(#"''"#) == [""])
        #expect(try ShellWords.split("$HOME `x`") == ["$HOME", "`x`"])
        #expect(throws: ShellWords.Error.self) { try ShellWords.split("'open") }
        #expect(throws: ShellWords.Error.self) { try ShellWords.split("trailing\\") }
    }
}

/// `VM_NET_QUEUES`: queue pairs per NIC, by default the vCPU count capped at 8.
@Suite struct NetQueuesConfigurationTests {
    private func queues(_ environment: [String: String]) throws -> Int {
        try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes"].merging(environment) { $1 }).netQueues
    }

    @Test func defaultFollowsTheVCPUsUpToEight() throws {
        #expect(try queues([:]) == 1, "one vCPU: today's single-queue layout")
        #expect(try queues(["VM_CPUS": "2"]) == 2)
        #expect(try queues(["VM_CPUS": "8"]) == 8)
        #expect(try queues(["VM_CPUS": "64"]) == 8)
    }

    @Test func anExplicitValueWins() throws {
        #expect(try queues(["VM_CPUS": "4", "VM_NET_QUEUES": "1"]) == 1)
        #expect(try queues(["VM_CPUS": "1", "VM_NET_QUEUES": "4"]) == 4)
        #expect(try queues(["VM_NET_QUEUES": " 16 "]) == 16)
    }

    @Test(arguments: ["0", "17", "-1", "two", "2.5", "1\nInjected: x"])
    func badValuesAreOneLineNamingTheVariable(_ value: String) {
        do {
            _ = try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "VM_NET_QUEUES": value])
            Issue.record("VM_NET_QUEUES=\(value) was accepted")
        } catch {
            #expect(error.problems.map(\.variable) == ["VM_NET_QUEUES"])
            #expect(error.description.contains("VM_NET_QUEUES"))
            #expect(error.description.contains("1 to 16"))
            #expect(!error.description.contains { $0.isNewline })
        }
    }
}
