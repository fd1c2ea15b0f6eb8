#if canImport(Glibc)
import Glibc
#endif
import NetworkTypes
import SystemPackage

/// The accelerator QEMU runs the guest with.
package enum Accelerator: String, Sendable, Equatable, CustomStringConvertible {
    /// Hardware virtualization through /dev/kvm.
    case kvm
    /// QEMU's software emulator: always works, much slower.
    case tcg

    package var description: String { rawValue }
}

/// What the user asked for (`auto` unless overridden).
package enum AccelerationMode: String, Sendable, Equatable, CaseIterable {
    /// KVM when the host can run a normal guest with it, TCG otherwise.
    case auto
    /// KVM, even when the CPU flags do not advertise vmx/svm; fails when /dev/kvm is unusable.
    case kvm
    /// TCG, without probing.
    case tcg
}

/// Facts about the host that decide the accelerator. Collected by
/// ``AccelerationProbe/probeHost(devicePath:cpuinfoPath:)``, or built by hand in tests.
package struct AccelerationFacts: Sendable, Equatable {
    /// What happened when /dev/kvm was opened and asked for its API version.
    package enum Device: Sendable, Equatable {
        /// Opening the device failed (missing, permission denied, ...).
        case unavailable(errno: Errno)
        /// The device opened and `KVM_GET_API_VERSION` returned this value (or -1 on error); with
        /// version 12, `KVM_CREATE_VM` worked too.
        case apiVersion(Int32)
        /// The device answered version 12 but `KVM_CREATE_VM` failed: no guest can run.
        case cannotCreateVM(errno: Errno)
    }

    package var device: Device
    /// The flags of the first CPU in /proc/cpuinfo.
    package var cpuFlags: Set<String>

    package init(device: Device, cpuFlags: Set<String>) {
        self.device = device
        self.cpuFlags = cpuFlags
    }
}

/// The chosen accelerator and, when the choice deserves attention, one warning line.
package struct AccelerationChoice: Sendable, Equatable {
    package var accelerator: Accelerator
    package var warning: String?

    package init(accelerator: Accelerator, warning: String? = nil) {
        self.accelerator = accelerator
        self.warning = warning
    }
}

/// `kvm` was forced but /dev/kvm cannot be used.
package struct AccelerationError: Error, Equatable, CustomStringConvertible {
    package var reason: String

    package init(reason: String) { self.reason = reason }

    package var description: String {
        "KVM acceleration was requested but \(reason): run the container with --device /dev/kvm (or --privileged), or set the acceleration to auto or tcg"
    }
}

/// Decides between KVM and TCG.
///
/// KVM is used only where it can run a normal guest: /dev/kvm opens, answers
/// `KVM_GET_API_VERSION` with 12, and the CPU advertises `vmx` (Intel) or `svm`
/// (AMD). The last check matters inside nested or paravirtual hosts, where
/// /dev/kvm exists and answers but guests hang at boot.
package enum AccelerationProbe {
    /// The only KVM API version Linux has ever shipped.
    package static let expectedAPIVersion: Int32 = 12
    /// `_IO(KVMIO, 0x00)` with `KVMIO` = 0xAE.
    static let kvmGetAPIVersion: UInt = 0xAE00
    /// `_IO(KVMIO, 0x01)`.
    static let kvmCreateVM: UInt = 0xAE01

    /// Pure decision table; see the type's documentation.
    package static func choose(mode: AccelerationMode, facts: AccelerationFacts) throws(AccelerationError) -> AccelerationChoice {
        let deviceProblem: String? = switch facts.device {
        case let .unavailable(reason): "/dev/kvm cannot be opened (\(reason))"
        case let .apiVersion(version) where version != expectedAPIVersion:
            "/dev/kvm answered KVM_GET_API_VERSION with \(version) instead of \(expectedAPIVersion)"
        case let .cannotCreateVM(reason): "/dev/kvm cannot create a VM (KVM_CREATE_VM: \(reason))"
        case .apiVersion: nil
        }
        let hasVirtualizationFlag = facts.cpuFlags.contains("vmx") || facts.cpuFlags.contains("svm")

        switch mode {
        case .tcg:
            return AccelerationChoice(accelerator: .tcg)
        case .kvm:
            if let deviceProblem { throw AccelerationError(reason: deviceProblem) }
            guard hasVirtualizationFlag else {
                return AccelerationChoice(
                    accelerator: .kvm,
                    warning: "using KVM as requested although /proc/cpuinfo shows neither vmx nor svm: on a nested or paravirtual host the guest may hang; set acceleration to auto to fall back to TCG"
                )
            }
            return AccelerationChoice(accelerator: .kvm)
        case .auto:
            if let deviceProblem {
                return AccelerationChoice(
                    accelerator: .tcg,
                    warning: "KVM not usable: \(deviceProblem); using TCG software emulation, which is much slower"
                )
            }
            guard hasVirtualizationFlag else {
                return AccelerationChoice(
                    accelerator: .tcg,
                    warning: "KVM not usable: /dev/kvm answers but /proc/cpuinfo shows neither vmx nor svm (a nested or paravirtual KVM that cannot run a normal guest); using TCG software emulation, which is much slower"
                )
            }
            return AccelerationChoice(accelerator: .kvm)
        }
    }

    /// Probes the host. Never fails: problems become facts the decision reads.
    package static func probeHost(
        devicePath: String = "/dev/kvm",
        cpuinfoPath: String = "/proc/cpuinfo"
    ) -> AccelerationFacts {
        AccelerationFacts(device: probeDevice(path: devicePath), cpuFlags: cpuFlags(fromFileAt: cpuinfoPath))
    }

    /// Probes the host and decides in one step.
    package static func choose(
        mode: AccelerationMode,
        devicePath: String = "/dev/kvm",
        cpuinfoPath: String = "/proc/cpuinfo"
    ) throws(AccelerationError) -> AccelerationChoice {
        if mode == .tcg { return AccelerationChoice(accelerator: .tcg) }
        return try choose(mode: mode, facts: probeHost(devicePath: devicePath, cpuinfoPath: cpuinfoPath))
    }

    static func probeDevice(path: String) -> AccelerationFacts.Device {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return .unavailable(errno: .current) }
        defer { close(fd) }
        let version = ioctl(fd, kvmGetAPIVersion)
        guard version == expectedAPIVersion else { return .apiVersion(version) }
        // A VM that is created and closed at once: proves the kernel would run one.
        let vm = ioctl(fd, kvmCreateVM, 0)
        guard vm >= 0 else { return .cannotCreateVM(errno: .current) }
        close(vm)
        return .apiVersion(version)
    }

    static func cpuFlags(fromFileAt path: String) -> Set<String> {
        guard let text = readSmallTextFile(path) else { return [] }
        return parseCPUFlags(cpuinfo: text)
    }

    /// The flags of the first `flags` line of a /proc/cpuinfo text.
    package static func parseCPUFlags(cpuinfo: String) -> Set<String> {
        for line in cpuinfo.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2,
                  parts[0].trimmingCharacters(in: " \t") == "flags" else { continue }
            return Set(parts[1].split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init))
        }
        return []
    }
}

func readSmallTextFile(_ path: String, limit: Int = 4 << 20) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while bytes.count < limit {
        let count = retryingOnInterrupt { chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
        if count < 0 { return nil }
        if count == 0 { break }
        bytes.append(contentsOf: chunk[0..<count])
    }
    return String(decoding: bytes, as: UTF8.self)
}

extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        var result = self
        while let first = result.first, set.contains(first) { result.removeFirst() }
        while let last = result.last, set.contains(last) { result.removeLast() }
        return result
    }
}
