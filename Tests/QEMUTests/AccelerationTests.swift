import Foundation
import Testing
import QEMU

@Suite struct AccelerationTests {
    private let withVMX: Set<String> = ["fpu", "vmx", "sse2"]
    private let withSVM: Set<String> = ["fpu", "svm"]
    private let withoutFlag: Set<String> = ["fpu", "sse2", "hypervisor"]

    @Test func autoUsesKVMOnlyWhenDeviceAPIAndCPUFlagsAgree() throws {
        let good = AccelerationFacts(device: .apiVersion(12), cpuFlags: withVMX)
        #expect(try AccelerationProbe.choose(mode: .auto, facts: good) == AccelerationChoice(accelerator: .kvm))
        let amd = AccelerationFacts(device: .apiVersion(12), cpuFlags: withSVM)
        #expect(try AccelerationProbe.choose(mode: .auto, facts: amd) == AccelerationChoice(accelerator: .kvm))
    }

    @Test(arguments: [
        AccelerationFacts(device: .unavailable(reason: "No such file or directory"), cpuFlags: ["vmx"]),
        AccelerationFacts(device: .apiVersion(11), cpuFlags: ["vmx"]),
        AccelerationFacts(device: .apiVersion(-1), cpuFlags: ["svm"]),
        AccelerationFacts(device: .apiVersion(12), cpuFlags: ["fpu", "hypervisor"]),
        AccelerationFacts(device: .unavailable(reason: "Permission denied"), cpuFlags: []),
    ])
    func autoFallsBackToTCGWithOneWarningLine(_ facts: AccelerationFacts) throws {
        let choice = try AccelerationProbe.choose(mode: .auto, facts: facts)
        #expect(choice.accelerator == .tcg)
        let warning = try #require(choice.warning)
        #expect(!warning.contains("\n"))
        #expect(warning.contains("TCG"))
    }

    @Test func theWarningSaysWhy() throws {
        let nested = AccelerationFacts(device: .apiVersion(12), cpuFlags: withoutFlag)
        #expect(try AccelerationProbe.choose(mode: .auto, facts: nested).warning?.contains("neither vmx nor svm") == true)
        let missing = AccelerationFacts(device: .unavailable(reason: "No such file or directory"), cpuFlags: withVMX)
        #expect(try AccelerationProbe.choose(mode: .auto, facts: missing).warning?.contains("No such file or directory") == true)
    }

    @Test func tcgIsAlwaysHonoured() throws {
        for facts in [AccelerationFacts(device: .apiVersion(12), cpuFlags: withVMX),
                      AccelerationFacts(device: .unavailable(reason: "x"), cpuFlags: [])] {
            #expect(try AccelerationProbe.choose(mode: .tcg, facts: facts) == AccelerationChoice(accelerator: .tcg))
        }
    }

    @Test func forcedKVMNeedsAWorkingDeviceButNotTheCPUFlag() throws {
        let nested = try AccelerationProbe.choose(mode: .kvm, facts: AccelerationFacts(device: .apiVersion(12), cpuFlags: withoutFlag))
        #expect(nested.accelerator == .kvm)
        #expect(nested.warning != nil)
        #expect(try AccelerationProbe.choose(mode: .kvm, facts: AccelerationFacts(device: .apiVersion(12), cpuFlags: withVMX))
            == AccelerationChoice(accelerator: .kvm))
        #expect(throws: AccelerationError.self) {
            try AccelerationProbe.choose(mode: .kvm, facts: AccelerationFacts(device: .unavailable(reason: "Permission denied"), cpuFlags: withVMX))
        }
        #expect(throws: AccelerationError.self) {
            try AccelerationProbe.choose(mode: .kvm, facts: AccelerationFacts(device: .apiVersion(3), cpuFlags: withVMX))
        }
    }

    @Test func parsesTheFirstFlagsLineOfCPUInfo() {
        let text = """
        processor\t: 0
        vendor_id\t: GenuineIntel
        flags\t\t: fpu vme de vmx  sse2
        bugs\t\t: spectre_v1

        processor\t: 1
        flags\t\t: fpu other
        """
        #expect(AccelerationProbe.parseCPUFlags(cpuinfo: text) == ["fpu", "vme", "de", "vmx", "sse2"])
        #expect(AccelerationProbe.parseCPUFlags(cpuinfo: "processor: 0\n").isEmpty)
    }

    @Test func probingAMissingDeviceReportsItUnavailable() throws {
        let directory = try TemporaryDirectory()
        let facts = AccelerationProbe.probeHost(devicePath: directory.file("kvm"), cpuinfoPath: directory.file("cpuinfo"))
        #expect(facts == AccelerationFacts(device: .unavailable(reason: "No such file or directory"), cpuFlags: []))
    }

    /// The live probe agrees with what this host's files say, whatever the host is.
    @Test func theLiveProbeMatchesThisHost() throws {
        let facts = AccelerationProbe.probeHost()
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        #expect(facts.cpuFlags == AccelerationProbe.parseCPUFlags(cpuinfo: cpuinfo))
        if !FileManager.default.fileExists(atPath: "/dev/kvm") {
            #expect(facts.device == .unavailable(reason: "No such file or directory"))
        }
        let choice = try AccelerationProbe.choose(mode: .auto)
        let hardware = facts.cpuFlags.contains("vmx") || facts.cpuFlags.contains("svm")
        if !hardware {
            #expect(choice.accelerator == .tcg)
        }
        if case .apiVersion(12) = facts.device, hardware {
            #expect(choice.accelerator == .kvm)
        }
    }
}
