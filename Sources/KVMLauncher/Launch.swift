import ContainerInstance
import DHCPServer
import Foundation
import LaunchConfiguration
import Logging
import NetAttach
import Netlink
import NetworkTypes
import QEMU
import Supervisor

#if canImport(Glibc)
import Glibc
#endif

/// The launch, as a straight line: configuration → preflight → inventory → plan → QEMU arguments
/// → (changes start here) recover → attach → DHCP → supervise QEMU → teardown.
///
/// Everything that can be wrong with the input is found before the first change, so a bad setting
/// leaves the container exactly as it was.
struct Launch {
    var configuration: LaunchConfiguration
    var environment: [String: String]
    var logger: Logger
    var mode: Mode

    enum Mode {
        case launch
        case dryRun(json: Bool)
    }

    /// The shared base of the run directories: `/run/kvm-launch` unless `KVM_LAUNCH_RUN_DIR` says
    /// otherwise. This launcher's own directory is a fresh `vm-…` under it (see ``RunDirectory``).
    static func runDirectoryBase(_ environment: [String: String]) -> String {
        environment["KVM_LAUNCH_RUN_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? RunDirectory.defaultBase
    }

    /// This container's QMP socket: abstract, named after the PID namespace (``QMPSocketName``);
    /// never a file under the (possibly shared) run directory.
    static var qmpSocketPath: String { QMPSocketName.current() ?? "@kvm-launch/qmp" }

    var runDirectoryBase: String { Self.runDirectoryBase(environment) }
    var qmpSocketPath: String { Self.qmpSocketPath }

    /// Everything decided before anything changes.
    struct Preparation {
        var qemuBinary: String
        var plan: AttachPlan
        var qemu: QEMUConfiguration
        var inventory: Inventory
        var accelerationWarning: String?
    }

    func prepare(socket: NetlinkSocket) throws -> Preparation {
        do {
            try RunDirectory.validate(base: runDirectoryBase)
        } catch {
            throw LaunchFailure("\(error)")
        }
        let qemuBinary = try Preflight.resolveLauncher(configuration.qemuBinary, searchPath: environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")
        var disk: DiskImage?
        if configuration.legacy.blockOptions == nil {
            disk = try configuration.imagePath.map { path throws(PreflightError) in try DiskImage.probe(path: path) }
                ?? Preflight.checkImage()
        }
        let acceleration = try AccelerationProbe.choose(mode: AccelerationMode(rawValue: configuration.acceleration.rawValue) ?? .auto)

        let inventory = try Inventory.read(from: socket)
        // A namespace left behind by a killed launcher is planned as it will be once restored.
        let clean = inventory.restoringRecordedIdentities()
        let decisions = try InterfaceSelection.decide(clean, selection: configuration.selection)
        let planner = AttachPlanner(configuration: configuration, resolver: Self.readResolver(), hostname: Self.hostname())
        var generator = SystemRandomNumberGenerator()
        let plan = try planner.plan(selected: InterfaceSelection.selected(decisions), inventory: clean, using: &generator)

        let nics = plan.interfaces.enumerated().map { position, interface in
            NetworkInterfaceCard(mac: interface.guestMAC, backend: .tapFileDescriptor(Int32(3 + 2 * position), vhost: .off),
                                 hostMTU: interface.mtu)
        }
        var legacy = LegacyOptions(cpu: configuration.legacy.cpuOptions, block: configuration.legacy.blockOptions,
                                   video: configuration.legacy.videoOptions)
        if !configuration.legacy.kvmOptions.isEmpty { legacy.base = configuration.legacy.kvmOptions }
        let qemu = QEMUConfiguration(
            accelerator: acceleration.accelerator, memoryMiB: configuration.memoryMiB, vcpus: configuration.cpus,
            disk: disk, nics: nics, graphics: configuration.graphics ? .legacyVGA : .none,
            qmpSocketPath: qmpSocketPath, name: configuration.hostname ?? Self.hostname(), legacy: legacy,
            extraArguments: configuration.extraArguments)
        _ = try qemu.arguments()  // validates
        return Preparation(qemuBinary: qemuBinary, plan: plan, qemu: qemu, inventory: inventory, accelerationWarning: acceleration.warning)
    }

    /// Runs the launch; returns the process exit status.
    func run() async throws -> Int32 {
        let socket = try NetlinkSocket()
        let preparation = try prepare(socket: socket)
        for warning in configuration.warnings + preparation.plan.warnings { logger.warning("\(warning)") }
        if let warning = preparation.accelerationWarning { logger.warning("\(warning)") }

        if case .dryRun(let json) = mode {
            let arguments = [preparation.qemuBinary] + (try preparation.qemu.arguments())
            if json {
                print(PlanReport.json(preparation.plan, qemuArguments: arguments))
            } else {
                print(PlanReport.text(preparation.plan))
                print("\nQEMU command line (one argument per line):")
                for argument in arguments { print("  \(argument)") }
            }
            return 0
        }

        // Another QEMU already serving this container's QMP name (a second launcher in the same
        // network and PID namespaces) would take status and stop requests: refuse before any change.
        if QMPClient.isListening(at: qmpSocketPath) {
            throw LaunchFailure("a VM already runs in this container's network and PID namespaces (its QMP socket \(qmpSocketPath) answers): stop it first, or give this launcher its own PID namespace")
        }
        // This launcher's own run directory under the (possibly shared) base; removed at the end.
        let runDirectory: RunDirectory
        do {
            runDirectory = try RunDirectory(base: runDirectoryBase)
        } catch {
            throw LaunchFailure("\(error)")
        }
        defer { runDirectory.remove() }
        let abandoned = RunDirectory.removeAbandoned(in: runDirectoryBase)
        if !abandoned.isEmpty { logger.info("removed \(abandoned.count) run director\(abandoned.count == 1 ? "y" : "ies") left by launchers that are gone: \(abandoned.joined(separator: ", "))") }
        // QEMU's console makes the terminal raw; put it back however this ends (QEMU killed included).
        let terminal = TerminalSettings.save()
        defer { terminal?.restore() }

        // From here on the container changes; every change is journalled.
        let stops = try StopSignals.install()
        try Supervisor.becomeSubreaper()
        let attacher = Attacher(socket: socket, nodeDirectory: runDirectory.path, logger: logger,
                                afterStep: Self.faultInjection(environment))
        let restored = try attacher.recover(preparation.inventory)
        if !restored.isEmpty { logger.notice("restored \(restored.joined(separator: ", ")) after an earlier run that did not finish") }
        let attachments = try attacher.apply(preparation.plan)

        var servers: [DHCPServer] = []
        var serverTasks: [Task<Void, Never>] = []
        defer {
            for server in servers { server.stop() }
        }
        do {
            for attachment in attachments {
                guard let lease = attachment.plan.lease else { continue }
                let server = try DHCPServer(interfaceName: attachment.plan.containerSideName, lease: lease.dhcpLease, logger: logger)
                servers.append(server)
                let logger = self.logger
                serverTasks.append(Task {
                    do { try await server.run() } catch { logger.error("DHCP server on \(server.interfaceName) stopped: \(error)") }
                })
            }
        } catch {
            for server in servers { server.stop() }
            let problems = attacher.teardown()
            throw LaunchFailure("cannot start the DHCP server: \(error)" + (problems.isEmpty ? " (every change was undone)" : " (undoing failed: \(problems.joined(separator: "; ")))"))
        }

        var qemu = preparation.qemu
        var mappings: [FileDescriptorMapping] = []
        for (position, attachment) in attachments.enumerated() {
            let tapFD = Int32(3 + 2 * position), vhostFD = tapFD + 1
            mappings.append(FileDescriptorMapping(parent: attachment.descriptor.rawValue, child: tapFD))
            if let vhost = attachment.vhostDescriptor {
                mappings.append(FileDescriptorMapping(parent: vhost.rawValue, child: vhostFD))
                qemu.nics[position].backend = .tapFileDescriptor(tapFD, vhost: .fileDescriptor(vhostFD))
            }
        }
        if attachments.contains(where: { $0.vhostDescriptor == nil }) && !attachments.isEmpty {
            logger.notice("vhost-net is off: /dev/vhost-net is missing or does not open here; QEMU moves the packets itself")
        }
        let arguments = try qemu.arguments()
        logger.info("starting \(preparation.qemuBinary) \(arguments.joined(separator: " "))")
        let supervisor = Supervisor(policy: ShutdownPolicy(powerdownTimeout: .seconds(configuration.shutdownTimeoutSeconds)), logger: logger)
        let result: SupervisionResult
        do {
            result = try await supervisor.run(
                ChildCommand(executable: preparation.qemuBinary, arguments: arguments, environment: environment, fileDescriptors: mappings),
                stopActions: .qmp(socketPath: qmpSocketPath), stopRequests: stops)
        } catch {
            for server in servers { server.stop() }
            let problems = attacher.teardown()
            throw LaunchFailure("QEMU could not be run: \(error)" + (problems.isEmpty ? " (the container's network is restored)" : " (restoring failed: \(problems.joined(separator: "; ")))"))
        }
        for server in servers { server.stop() }
        for task in serverTasks { await task.value }
        let problems = attacher.teardown()
        if problems.isEmpty {
            logger.info("the container's interfaces are restored")
        } else {
            logger.error("restoring the container's interfaces left problems: \(problems.joined(separator: "; "))")
        }
        if result.succeeded {
            logger.info("the guest powered off; exiting 0")
        } else {
            logger.error("\(result)")
        }
        return problems.isEmpty ? result.exitCode : (result.exitCode == 0 ? 1 : result.exitCode)
    }

    /// `KVM_LAUNCH_TEST_KILL_AFTER_STEP=N`: the launcher SIGKILLs itself right after attach step N.
    /// A fault-injection point for the restart tests (a SIGKILL at an exact moment cannot be
    /// produced from outside); unset in any real deployment.
    static func faultInjection(_ environment: [String: String]) -> ((Int) -> Void)? {
        guard let text = environment["KVM_LAUNCH_TEST_KILL_AFTER_STEP"], let step = Int(text) else { return nil }
        return { done in if done == step { kill(getpid(), SIGKILL) } }
    }

    static func readResolver(path: String = "/etc/resolv.conf") -> ResolverConfiguration {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return ResolverConfiguration() }
        return ResolverConfiguration(parsing: text)
    }

    static func hostname() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return nil }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? nil : name
    }
}
