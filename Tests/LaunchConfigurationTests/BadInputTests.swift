import Testing
import NetworkTypes
@testable import LaunchConfiguration

/// Issue 10 items 10 and 12: what `LaunchConfiguration` refuses, so `--dry-run` and a launch fail on it
/// before anything changes, each in one line.
@Suite struct ConfigurationBadInputTests {
    private func problems(_ environment: [String: String]) -> [ConfigurationProblem] {
        do {
            _ = try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes"].merging(environment) { $1 })
            return []
        } catch {
            return error.problems
        }
    }

    private func message(_ environment: [String: String]) -> String {
        do {
            _ = try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes"].merging(environment) { $1 })
            return ""
        } catch {
            return error.description
        }
    }

    /// Blanks around a value are dropped at both ends, never inside; a value of blanks only is unset.
    @Test func blanksAroundValuesAreTrimmed() throws {
        #expect(try !LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "ENABLE_DHCP": "  no  "]).dhcpEnabled)
        #expect(try !LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "ENABLE_DHCP": "no "]).dhcpEnabled)
        #expect(try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "ENABLE_DHCP": "   "]).dhcpEnabled)
        #expect(try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "VM_CPUS": " 3  "]).cpus == 3)
        #expect(problems(["ENABLE_DHCP": " n o "]).map(\.variable) == ["ENABLE_DHCP"])
        #expect(problems(["VM_CPUS": " 1 2 "]).map(\.variable) == ["VM_CPUS"])
    }

    @Test(arguments: ["99999999999T", "5P" /* not a unit */, "8388608T"])
    func memoryNoMachineHasIsRefused(_ value: String) {
        let found = problems(["VM_MEMORY": value])
        #expect(found.map(\.variable) == ["VM_MEMORY"])
    }

    @Test func memoryAtTheLimitIsAccepted() throws {
        let config = try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "VM_MEMORY": "4096T"])
        #expect(config.memoryMiB == LaunchConfiguration.maximumMemoryMiB)
        #expect(message(["VM_MEMORY": "4097T"]).contains("more memory than any machine has"))
    }

    @Test(arguments: [
        "vm\nname", "$(reboot)", "a b", "under_score", "-lead", "trail-", "a..b", String(repeating: "x", count: 64),
        (0..<50).map { _ in "abcde" }.joined(separator: "."),  // 299 bytes
        "ünïcode",
    ])
    func hostnamesDHCPAndQEMUCannotCarryAreRefused(_ name: String) {
        #expect(problems(["VM_HOSTNAME": name]).map(\.variable) == ["VM_HOSTNAME"])
        #expect(!message(["VM_HOSTNAME": name]).contains("\n"))
    }

    @Test(arguments: ["vm1", "web-01.example.test", "a", String(repeating: "x", count: 63), "host.example.test.",
                      (0..<42).map { _ in "abcde" }.joined(separator: ".")])  // 251 bytes
    func validHostnamesAreAccepted(_ name: String) throws {
        #expect(try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "VM_HOSTNAME": name]).hostname == name)
    }

    @Test func tooManyNameServersAreRefused() {
        let many = (1...64).map { "10.0.\($0 / 250).\($0 % 250 + 1)" }.joined(separator: " ")
        #expect(message(["DNS_SERVERS": many]).contains("lists 64 servers, more than one DHCP answer carries (63)"))
        let enough = (1...63).map { "10.0.\($0 / 250).\($0 % 250 + 1)" }.joined(separator: " ")
        #expect(problems(["DNS_SERVERS": enough]).isEmpty)
    }

    @Test func nameServersThatAreNoServers() {
        #expect(message(["DNS_SERVERS": "0.0.0.0"]) == #"invalid configuration: DNS_SERVERS has 0.0.0.0, which means "no address" and is no name server; give a name server's IPv4 address"#)
        #expect(!message(["DNS_SERVERS": "0.0.0.0"]).contains("loopback"))
        #expect(message(["DNS_SERVERS": "127.0.0.53"]).contains("loopback"))
        #expect(message(["DNS_SERVERS": "255.255.255.255"]).contains("broadcast or multicast"))
        #expect(message(["DNS_SERVERS": "224.0.0.251"]).contains("broadcast or multicast"))
    }

    @Test(arguments: [",", " , ,", "\t"])
    func nameServersListingNothingAreAnError(_ value: String) {
        #expect(problems(["DNS_SERVERS": value]).map(\.variable) == ["DNS_SERVERS"])
        #expect(message(["DNS_SERVERS": value]).contains("names no server"))
    }

    @Test func theRunDirectoryMustBeAbsoluteAndLeaveRoomForTheSocket() throws {
        #expect(message(["KVM_LAUNCH_RUN_DIR": "relrun"]).contains("must be an absolute path"))
        #expect(problems(["KVM_LAUNCH_RUN_DIR": "/run/../etc"]).map(\.variable) == ["KVM_LAUNCH_RUN_DIR"])
        // 98 bytes + "/qmp.sock" (9) = 107: the longest that works; one more is refused.
        let longest = "/" + String(repeating: "r", count: 97)
        let config = try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "KVM_LAUNCH_RUN_DIR": longest])
        #expect(config.qmpSocketPath.utf8.count == 107)
        #expect(message(["KVM_LAUNCH_RUN_DIR": longest + "r"]).contains("would be 108 bytes"))
        #expect(try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes"]).qmpSocketPath == "/run/kvm-launch/qmp.sock")
    }

    @Test func imageFormatAndBackingPolicy() throws {
        let config = try LaunchConfiguration(environment: ["AUTO_ATTACH": "yes", "VM_IMAGE_FORMAT": "QCOW2", "VM_IMAGE_BACKING": "allow"])
        #expect(config.imageFormat == "qcow2")
        #expect(config.imageBackingAnywhere)
        #expect(try !LaunchConfiguration(environment: ["AUTO_ATTACH": "yes"]).imageBackingAnywhere)
        #expect(problems(["VM_IMAGE_FORMAT": "iso"]).map(\.variable) == ["VM_IMAGE_FORMAT"])
        #expect(problems(["VM_IMAGE_BACKING": "yes"]).map(\.variable) == ["VM_IMAGE_BACKING"])
        #expect(problems(["VM_IMAGE": "/image/a\nb.qcow2"]).map(\.variable) == ["VM_IMAGE"])
    }

    /// One line means one line: every value echoed in an error has its control characters escaped.
    @Test(arguments: ["VM_MEMORY", "VM_ACCEL", "USE_NET_BRIDGES", "SELECTED_NETWORK", "VM_CPUS", "LAUNCHER",
                      "CONTAINER_SIDE_ADDRESS", "VM_HOSTNAME", "DNS_SERVERS", "ATTACH_IFACES", "VM_IMAGE",
                      "VM_IMAGE_FORMAT", "KVM_LAUNCH_RUN_DIR"])
    func echoedValuesStayOnOneLine(_ variable: String) {
        let value = "bad\nInjected: line\r\u{1b}[31m"
        var environment = [variable: value]
        if variable == "ATTACH_IFACES" { environment["AUTO_ATTACH"] = "no" }
        let text = message(environment)
        #expect(text.contains(variable), "\(text)")
        #expect(!text.contains { $0.isNewline }, "\(text)")
        #expect(!text.unicodeScalars.contains { $0.value == 0x1B })
    }

    @Test func quotedShowsWhatWasThere() {
        #expect(LaunchConfiguration.quoted("a\nb\t\"c\"\\\u{7}") == #""a\nb\t\"c\"\\\u{7}""#)
        #expect(LaunchConfiguration.escaped("x\\y\n", backslashes: false) == #"x\y\n"#)
    }
}
