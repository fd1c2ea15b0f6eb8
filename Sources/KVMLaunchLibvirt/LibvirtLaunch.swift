import ContainerInstance
import KVMLauncher
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
/// differs from the direct path; attach, DHCP and teardown are the launcher's same scope.
struct LibvirtProvider: LibvirtBackendProvider {
    /// Everything the libvirt backend needs, checked before anything changes: the daemons are
    /// installed, the network mode is one libvirt can use, the domain can be expressed.
    func prepare(_ request: LibvirtRequest) throws -> any PreparedLibvirtDomain {
        if request.configuration.networkMode == .bridge {
            throw LaunchFailure("USE_NET_BRIDGES=yes is not supported with VM_BACKEND=libvirt (libvirt opens the macvtap itself); use macvtap mode or VM_BACKEND=qemu")
        }
        let runDirectory = request.runDirectoryBase
        let privateConfiguration = PrivateConfiguration(runDirectory: runDirectory)
        if privateConfiguration.socketPath.utf8.count > 107 {
            throw LaunchFailure("KVM_LAUNCH_RUN_DIR is too long for VM_BACKEND=libvirt: libvirtd's socket \(privateConfiguration.socketPath) must fit a unix socket's 107 bytes (keep KVM_LAUNCH_RUN_DIR to at most \(107 - (privateConfiguration.socketPath.utf8.count - runDirectory.utf8.count)) bytes)")
        }
        let binaries = try DaemonBinaries.locate(searchPath: request.environment["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        let nics = request.plan.interfaces.map { DomainNIC(targetDevice: $0.vmLinkName, mac: $0.guestMAC, mtu: $0.mtu, queues: $0.queues) }
        var definition = try DomainDefinition(request.qemu, emulator: request.qemuBinary, nics: nics)
        if request.seedImage != nil {
            // Shown by --dry-run; the real path (this launcher's own vm-… directory) is known at start.
            definition.seedImagePath = "\(runDirectory)/\(RunDirectory.namePrefix)<this launcher's>/\(RunDirectory.seedFileName)"
        }
        return LibvirtDomainLaunch(binaries: binaries, definition: definition, configuration: privateConfiguration,
                                   seedImage: request.seedImage)
    }

    /// `kvm-launch status` with `VM_BACKEND=libvirt`: asks the private libvirtd for the domain's state.
    func status(runDirectory: String) -> Bool {
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

/// The checked domain, its daemons and the seed, run inside the launcher's attachment scope.
struct LibvirtDomainLaunch: PreparedLibvirtDomain {
    var binaries: DaemonBinaries
    var definition: DomainDefinition
    var configuration: PrivateConfiguration
    /// The cloud-init seed disk's bytes, written once into this launcher's own directory at start.
    var seedImage: [UInt8]?

    var domainXML: String { definition.xml() }

    /// Starts virtlogd and libvirtd, runs the domain until it stops, then stops the daemons (also
    /// when anything here fails).
    func run(_ context: LibvirtRunContext) async throws -> SupervisionResult {
        var definition = definition
        if let seedImage {
            // A regular file libvirt can name; created exclusively in this launcher's own directory,
            // never through a link, deleted with the directory at teardown.
            definition.seedImagePath = try context.writeFile(RunDirectory.seedFileName, seedImage)
        }
        // libvirt opens each macvtap through /dev/tap<ifindex> itself, once per queue. kvm-launch's own
        // descriptors would be more queues that take the guest's packets: point them at /dev/null (the
        // journal still closes those numbers at teardown).
        var taps: [TapNode] = []
        for attachment in context.attachments {
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
        let (daemons, connection) = try await LibvirtDaemons.start(configuration, binaries: binaries, taps: taps,
                                                                   environment: context.environment, logger: context.logger)
        let machine = LibvirtMachine(definition: definition, policy: context.policy, logger: context.logger)
        let result: SupervisionResult
        do {
            result = try await machine.run(connection: connection, daemons: daemons, stopRequests: context.stops)
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
