import Foundation
import LaunchConfiguration
import Testing
import TestSupport

/// `VM_BACKEND`: the default is the direct path, `libvirt` is accepted in any case, anything else is
/// an error naming the variable; `--dry-run` shows the domain XML and changes nothing.
@Suite struct BackendChoiceTests {
    static let base = ["AUTO_ATTACH": "yes"]

    @Test func defaultIsQEMUAndLibvirtIsAccepted() throws {
        #expect(try LaunchConfiguration(environment: Self.base, arguments: []).backend == .qemu)
        #expect(try LaunchConfiguration(environment: Self.base.merging(["VM_BACKEND": "LibVirt"]) { $1 }, arguments: []).backend == .libvirt)
        #expect(try LaunchConfiguration(environment: Self.base.merging(["VM_BACKEND": "qemu"]) { $1 }, arguments: []).backend == .qemu)
    }

    @Test func anUnknownBackendIsAnErrorNamingTheVariable() {
        do {
            _ = try LaunchConfiguration(environment: Self.base.merging(["VM_BACKEND": "xen"]) { $1 }, arguments: [])
            Issue.record("VM_BACKEND=xen was accepted")
        } catch {
            #expect("\(error)".contains("VM_BACKEND"))
            #expect("\(error)".contains("qemu, libvirt"))
        }
    }

    @Test(.enabled(if: isRoot, "needs root: makes network namespaces"))
    func dryRunPrintsTheDomainXMLAndChangesNothing() throws {
        let fixture = try ContainerFixture([ContainerFixture.Interface(name: "eth0", addresses: ["10.89.1.2/24"], peerAddress: "10.89.1.1/24", defaultRoute: true)])
        defer { fixture.destroy() }
        let before = try fixture.state()
        let mac = try fixture.mac(of: "eth0")
        let disk = fixture.directory.appendingPathComponent("disk.qcow2").path
        _ = try run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "64M"])
        let runDirectory = fixture.directory.appendingPathComponent("run").path
        let environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "AUTO_ATTACH": "yes", "VM_BACKEND": "libvirt", "VM_ACCEL": "tcg",
                           "VM_IMAGE": disk, "KVM_LAUNCH_RUN_DIR": runDirectory]
        let text = try fixture.container.exec([kvmLaunchBinary, "--dry-run", "-device", "virtio-rng-pci"], environment: environment, check: false)
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("<domain type='qemu'"))
        #expect(text.stdout.contains("<mac address='\(mac)'/>"))
        #expect(text.stdout.contains("<qemu:arg value='virtio-rng-pci'/>"))

        let json = try fixture.container.exec([kvmLaunchBinary, "--dry-run", "--json"], environment: environment, check: false)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let xml = try #require(object?["libvirtDomainXML"] as? String, "--json includes the domain XML: \(json.stdout.prefix(300))")
        #expect(xml.contains("<mac address='\(mac)'/>"))
        #expect(try fixture.state() == before, "nothing changed")
        #expect(!FileManager.default.fileExists(atPath: runDirectory), "nothing written")
    }

    /// CLOUD_INIT with VM_BACKEND=libvirt: `--dry-run` shows the seed and its read-only raw disk, and writes nothing.
    @Test(.enabled(if: isRoot, "needs root: makes network namespaces"))
    func dryRunWithASeedShowsTheSeedDiskAndWritesNothing() throws {
        let fixture = try ContainerFixture([ContainerFixture.Interface(name: "eth0", addresses: ["10.89.4.2/24"], peerAddress: "10.89.4.1/24", defaultRoute: true)])
        defer { fixture.destroy() }
        let before = try fixture.state()
        let disk = fixture.directory.appendingPathComponent("disk.qcow2").path
        _ = try run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "64M"])
        let runDirectory = fixture.directory.appendingPathComponent("run").path
        let result = try fixture.container.exec([kvmLaunchBinary, "--dry-run"], environment: [
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "AUTO_ATTACH": "yes", "VM_BACKEND": "libvirt", "VM_ACCEL": "tcg", "VM_IMAGE": disk,
            "KVM_LAUNCH_RUN_DIR": runDirectory, "CLOUD_INIT": "yes"], check: false)
        #expect(result.status == 0, "a seed is accepted with VM_BACKEND=libvirt: \(result.stderr)")
        #expect(result.stdout.contains("cloud-init seed"), "the seed is shown: \(result.stdout)")
        #expect(result.stdout.contains("<driver name='qemu' type='raw'/>") && result.stdout.contains("<readonly/>")
                && result.stdout.contains("cloud-init-seed.iso"), "the seed disk in the domain: \(result.stdout)")
        #expect(try fixture.state() == before, "nothing changed")
        #expect(!FileManager.default.fileExists(atPath: runDirectory), "nothing written")
    }

    /// `kvm-launch` never links libvirt (the QEMU-only image has none); `kvm-launch-libvirt` does.
    @Test func onlyTheLibvirtVariantLinksLibvirt() throws {
        let launcher = try run(["ldd", kvmLaunchBinary])
        #expect(!launcher.stdout.contains("libvirt"), "kvm-launch links: \(launcher.stdout)")
        let variant = try run(["ldd", kvmLaunchLibvirtBinary])
        #expect(variant.stdout.contains("libvirt.so.0"), "kvm-launch-libvirt links libvirt: \(variant.stdout)")
    }

    /// `kvm-launch` alone (the QEMU-only image) with VM_BACKEND=libvirt: one line naming the libvirt variant,
    /// non-zero, before anything changes; `--version` still answers.
    @Test(.enabled(if: isRoot, "needs root: makes network namespaces"))
    func withoutTheLibvirtVariantItIsOneLineAndNothingChanges() throws {
        let fixture = try ContainerFixture([ContainerFixture.Interface(name: "eth0", addresses: ["10.89.3.2/24"], peerAddress: "10.89.3.1/24", defaultRoute: true)])
        defer { fixture.destroy() }
        let before = try fixture.state()
        let alone = fixture.directory.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: alone, withIntermediateDirectories: true)
        let launcher = alone.appendingPathComponent("kvm-launch").path
        try FileManager.default.copyItem(atPath: kvmLaunchBinary, toPath: launcher)
        let disk = fixture.directory.appendingPathComponent("disk.qcow2").path
        _ = try run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "64M"])
        let runDirectory = fixture.directory.appendingPathComponent("run").path
        let environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "AUTO_ATTACH": "yes", "VM_BACKEND": "libvirt", "VM_ACCEL": "tcg",
                           "VM_IMAGE": disk, "KVM_LAUNCH_RUN_DIR": runDirectory]
        for arguments in [[], ["--dry-run"], ["status"]] {
            let result = try fixture.container.exec([launcher] + arguments, environment: environment, check: false)
            #expect(result.status != 0, "\(arguments): non-zero")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("Error: VM_BACKEND=libvirt needs the libvirt image variant")
                    && lines[0].contains("\(alone.path)/kvm-launch-libvirt"), "\(arguments): one line naming the variant: \(result.stderr)")
            #expect(result.stdout.isEmpty, "\(arguments): nothing else said: \(result.stdout)")
        }
        #expect(try fixture.state() == before, "nothing changed")
        #expect(!FileManager.default.fileExists(atPath: runDirectory), "nothing written")
        let version = try fixture.container.exec([launcher, "--version"], environment: environment, check: false)
        #expect(version.status == 0 && !version.stdout.isEmpty, "--version stays with kvm-launch: \(version.stderr)")
    }

    @Test(.enabled(if: isRoot, "needs root: makes network namespaces"))
    func bridgeModeIsRefusedBeforeAnyChange() throws {
        let fixture = try ContainerFixture([ContainerFixture.Interface(name: "eth0", addresses: ["10.89.2.2/24"], peerAddress: "10.89.2.1/24")])
        defer { fixture.destroy() }
        let before = try fixture.state()
        let disk = fixture.directory.appendingPathComponent("disk.qcow2").path
        _ = try run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "64M"])
        let result = try fixture.container.exec([kvmLaunchBinary], environment: [
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "AUTO_ATTACH": "yes", "VM_BACKEND": "libvirt", "USE_NET_BRIDGES": "yes",
            "VM_ACCEL": "tcg", "VM_IMAGE": disk, "KVM_LAUNCH_RUN_DIR": fixture.directory.appendingPathComponent("run").path], check: false)
        #expect(result.status != 0)
        #expect(result.stderr.contains("USE_NET_BRIDGES=yes is not supported with VM_BACKEND=libvirt"), "\(result.stderr)")
        #expect(try fixture.state() == before)
    }
}
