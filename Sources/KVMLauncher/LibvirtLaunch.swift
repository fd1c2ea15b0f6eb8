import Foundation
import LaunchConfiguration
import Libvirt
import LibvirtBackend
import Logging
import NetAttach
import QEMU
import Supervisor

#if canImport(Glibc)
import Glibc
#endif

/// `VM_BACKEND=libvirt`: the same plan and QEMU configuration run as a transient libvirt domain
/// by a private libvirtd (see Sources/LibvirtBackend/README.md). Only the "supervise QEMU" step
/// differs from the direct path; attach, DHCP and teardown are the same scope.
struct LibvirtLaunchPreparation {
    var binaries: DaemonBinaries
    var definition: DomainDefinition
    var configuration: PrivateConfiguration
}

extension Launch {
    /// Everything the libvirt backend needs, checked before anything changes: the daemons are
    /// installed, the network mode is one libvirt can use, the domain can be expressed.
    func prepareLibvirt(qemu: QEMUConfiguration, qemuBinary: String, plan: AttachPlan) throws -> LibvirtLaunchPreparation {
        if configuration.networkMode == .bridge {
            throw LaunchFailure("USE_NET_BRIDGES=yes is not supported with VM_BACKEND=libvirt (libvirt opens the macvtap itself); use macvtap mode or VM_BACKEND=qemu")
        }
        let privateConfiguration = PrivateConfiguration(runDirectory: runDirectory)
        if privateConfiguration.socketPath.utf8.count > 107 {
            throw LaunchFailure("KVM_LAUNCH_RUN_DIR is too long for VM_BACKEND=libvirt: libvirtd's socket \(privateConfiguration.socketPath) must fit a unix socket's 107 bytes (keep KVM_LAUNCH_RUN_DIR to at most \(107 - (privateConfiguration.socketPath.utf8.count - runDirectory.utf8.count)) bytes)")
        }
        do {
            let binaries = try DaemonBinaries.locate(searchPath: environment["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            let nics = plan.interfaces.map { DomainNIC(targetDevice: $0.vmLinkName, mac: $0.guestMAC, mtu: $0.mtu, queues: $0.queues) }
            let definition = try DomainDefinition(qemu, emulator: qemuBinary, nics: nics)
            return LibvirtLaunchPreparation(binaries: binaries, definition: definition, configuration: privateConfiguration)
        } catch {
            throw LaunchFailure("\(error)")
        }
    }

    /// Inside the attachment scope: starts virtlogd and libvirtd, runs the domain until it stops,
    /// then stops the daemons (also when anything here fails).
    static func runLibvirt(_ libvirt: LibvirtLaunchPreparation, attachments: [Attachment],
                           policy: ShutdownPolicy, stops: AsyncStream<StopRequest>, environment: [String: String],
                           logger: Logger) async throws -> SupervisionResult {
        // libvirt opens each macvtap through /dev/tap<ifindex> itself, once per queue. kvm-launch's own
        // descriptors would be more queues that take the guest's packets: point them at /dev/null (the
        // journal still closes those numbers at teardown).
        var taps: [TapNode] = []
        for attachment in attachments {
            taps.append(try TapNode.macvtap(link: attachment.plan.vmLinkName, descriptor: attachment.descriptor.rawValue))
            let null = open("/dev/null", O_RDWR | O_CLOEXEC)
            if null >= 0 {
                for queue in attachment.descriptors {
                    dup2(null, queue.rawValue)
                    _ = fcntl(queue.rawValue, F_SETFD, FD_CLOEXEC)
                }
                close(null)
            }
        }
        let (daemons, connection) = try await LibvirtDaemons.start(libvirt.configuration, binaries: libvirt.binaries, taps: taps,
                                                                   environment: environment, logger: logger)
        let machine = LibvirtMachine(definition: libvirt.definition, policy: policy, logger: logger)
        let result: SupervisionResult
        do {
            result = try await machine.run(connection: connection, daemons: daemons, stopRequests: stops)
        } catch {
            connection.close()
            await daemons.stop()
            throw error
        }
        connection.close()
        await daemons.stop()
        return result
    }
}

/// `kvm-launch status` with `VM_BACKEND=libvirt`: asks the private libvirtd for the domain's state.
enum LibvirtStatus {
    static func check(runDirectory: String) -> Bool {
        let configuration = PrivateConfiguration(runDirectory: runDirectory)
        do {
            let connection = try Connection(uri: configuration.uri)
            defer { connection.close() }
            let names = try connection.runningDomainNames()
            guard let name = names.first else {
                print("VM not running (libvirt has no running domain)")
                return false
            }
            let state = try connection.domain(named: name).state()
            print("VM \(state) (libvirt domain \(name))")
            return state == .running
        } catch {
            print("VM not reachable: \(error)")
            return false
        }
    }
}
