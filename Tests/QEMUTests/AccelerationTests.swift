import Foundation
import TestSupport
import Testing
import QEMU
import SystemPackage

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
        AccelerationFacts(device: .unavailable(errno: .noSuchFileOrDirectory), cpuFlags: ["vmx"]),
        AccelerationFacts(device: .apiVersion(11), cpuFlags: ["vmx"]),
        AccelerationFacts(device: .apiVersion(-1), cpuFlags: ["svm"]),
        AccelerationFacts(device: .apiVersion(12), cpuFlags: ["fpu", "hypervisor"]),
        AccelerationFacts(device: .unavailable(errno: .permissionDenied), cpuFlags: []),
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
        let missing = AccelerationFacts(device: .unavailable(errno: .noSuchFileOrDirectory), cpuFlags: withVMX)
        #expect(try AccelerationProbe.choose(mode: .auto, facts: missing).warning?.contains("No such file or directory") == true)
    }

    @Test func tcgIsAlwaysHonoured() throws {
        for facts in [AccelerationFacts(device: .apiVersion(12), cpuFlags: withVMX),
                      AccelerationFacts(device: .unavailable(errno: .ioError), cpuFlags: [])] {
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
            try AccelerationProbe.choose(mode: .kvm, facts: AccelerationFacts(device: .unavailable(errno: .permissionDenied), cpuFlags: withVMX))
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
        #expect(facts == AccelerationFacts(device: .unavailable(errno: .noSuchFileOrDirectory), cpuFlags: []))
    }

    @Test func aDeviceThatCannotCreateAVMMeansTCG() throws {
        let facts = AccelerationFacts(device: .cannotCreateVM(errno: .notSupported), cpuFlags: withVMX)
        let choice = try AccelerationProbe.choose(mode: .auto, facts: facts)
        #expect(choice.accelerator == .tcg)
        #expect(choice.warning?.contains("KVM_CREATE_VM") == true)
        #expect(throws: AccelerationError.self) { try AccelerationProbe.choose(mode: .kvm, facts: facts) }
    }

    /// The live choice against an independent truth: this test reads /proc/cpuinfo with its own code
    /// and tries KVM_CREATE_VM itself; KVM is right exactly when both say a guest can run.
    @Test func theLiveChoiceMatchesWhatThisHostOffers() throws {
        let truth = HostVirtualization.read()
        let choice = try AccelerationProbe.choose(mode: .auto)
        if truth.canRunGuests {
            #expect(choice == AccelerationChoice(accelerator: .kvm), "\(truth)")
        } else {
            #expect(choice.accelerator == .tcg, "\(truth)")
            let warning = try #require(choice.warning)
            #expect(warning.contains("using TCG") && !warning.contains("\n"))
            if !truth.deviceOpens {
                #expect(warning.contains("cannot be opened"))
            } else if !truth.createsVM {
                #expect(warning.contains("KVM_CREATE_VM"))
            } else {
                #expect(warning.contains("neither vmx nor svm"))
            }
        }
        // Forced KVM fails exactly when the device cannot be used.
        if truth.deviceOpens && truth.createsVM {
            #expect(try AccelerationProbe.choose(mode: .kvm).accelerator == .kvm)
        } else {
            #expect(throws: AccelerationError.self) { try AccelerationProbe.choose(mode: .kvm) }
        }
    }
}

/// What this host offers, found without the code under test.
struct HostVirtualization: CustomStringConvertible {
    var hardwareFlag: Bool
    var deviceOpens: Bool
    var createsVM: Bool
    var canRunGuests: Bool { hardwareFlag && deviceOpens && createsVM }
    var description: String { "vmx/svm: \(hardwareFlag), /dev/kvm opens: \(deviceOpens), KVM_CREATE_VM: \(createsVM)" }

    static func read() -> HostVirtualization {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let flagsLine = cpuinfo.components(separatedBy: "\n").first { $0.hasPrefix("flags") } ?? ""
        let words = Set(flagsLine.components(separatedBy: .whitespaces))
        let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        var creates = false
        if fd >= 0 {
            let vm = ioctl(fd, 0xAE01, 0)  // KVM_CREATE_VM
            if vm >= 0 { creates = true; close(vm) }
            close(fd)
        }
        return HostVirtualization(hardwareFlag: words.contains("vmx") || words.contains("svm"), deviceOpens: fd >= 0, createsVM: creates)
    }
}
