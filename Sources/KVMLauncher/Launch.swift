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

    /// `/run/kvm-launch` unless `KVM_LAUNCH_RUN_DIR` says otherwise (tests run several at once).
    static func runDirectory(_ environment: [String: String]) -> String {
        environment["KVM_LAUNCH_RUN_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/run/kvm-launch"
    }

    var runDirectory: String { Self.runDirectory(environment) }
    var qmpSocketPath: String { "\(runDirectory)/qmp.sock" }

    /// Everything decided before anything changes.
    struct Preparation {
        var qemuBinary: String
        var plan: AttachPlan
        /// QEMU's configuration, descriptor numbers included: the command line `--dry-run` prints
        /// is the one that runs.
        var qemu: QEMUConfiguration
        var descriptors: DescriptorLayout
        var inventory: Inventory
        /// What recovery restores first (empty for a clean namespace).
        var recovery: RecoveryPlan
        var accelerationWarning: String?
    }

    func prepare(socket: NetlinkSocket) throws -> Preparation {
        let qemuBinary = try Preflight.resolveLauncher(configuration.qemuBinary, searchPath: environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")
        var disk: DiskImage?
        if configuration.legacy.blockOptions == nil {
            disk = try configuration.imagePath.map { path throws(PreflightError) in try DiskImage.probe(path: path) }
                ?? Preflight.checkImage()
        }
        let acceleration = try AccelerationProbe.choose(mode: AccelerationMode(rawValue: configuration.acceleration.rawValue) ?? .auto)

        let inventory = try Inventory.read(from: socket)
        // A namespace left behind by a killed launcher is planned as it will be once restored.
        let recovery = RecoveryPlan(inventory)
        let clean = recovery.applied(to: inventory)
        let decisions = try InterfaceSelection.decide(clean, selection: configuration.selection)
        let planner = AttachPlanner(configuration: configuration, resolver: Self.readResolver(), hostname: Self.hostname())
        var generator = SystemRandomNumberGenerator()
        let plan = try planner.plan(selected: InterfaceSelection.selected(decisions), inventory: clean, using: &generator)

        let descriptors = DescriptorLayout(nics: plan.interfaces.count, vhost: TapDevices.vhostNetUsable())
        var legacy = LegacyOptions(cpu: configuration.legacy.cpuOptions, block: configuration.legacy.blockOptions,
                                   video: configuration.legacy.videoOptions)
        if !configuration.legacy.kvmOptions.isEmpty { legacy.base = configuration.legacy.kvmOptions }
        let qemu = QEMUConfiguration(
            accelerator: acceleration.accelerator, memoryMiB: configuration.memoryMiB, vcpus: configuration.cpus,
            disk: disk, nics: descriptors.cards(macs: plan.interfaces.map(\.guestMAC)),
            graphics: configuration.graphics ? .legacyVGA : .none,
            qmpSocketPath: qmpSocketPath, name: configuration.hostname ?? Self.hostname(), legacy: legacy,
            extraArguments: configuration.extraArguments)
        _ = try qemu.arguments()  // validates
        return Preparation(qemuBinary: qemuBinary, plan: plan, qemu: qemu, descriptors: descriptors,
                           inventory: inventory, recovery: recovery, accelerationWarning: acceleration.warning)
    }

    /// Runs the launch; returns the process exit status.
    ///
    /// One scope owns every change: ``Attacher/withAttachment(_:_:)`` attaches, runs the DHCP
    /// responders and QEMU's supervisor inside it, and undoes the journal on every way out.
    func run() async throws -> Int32 {
        let socket = try NetlinkSocket()
        let preparation = try prepare(socket: socket)
        for warning in configuration.warnings + preparation.plan.warnings { logger.warning("\(warning)") }
        if let warning = preparation.accelerationWarning { logger.warning("\(warning)") }
        let command = [preparation.qemuBinary] + (try preparation.qemu.arguments())

        if case .dryRun(let json) = mode {
            if json {
                print(PlanReport.json(preparation.plan, qemuArguments: command, recovery: preparation.recovery))
            } else {
                print(PlanReport.text(preparation.plan, recovery: preparation.recovery))
                print("\nQEMU command line (one argument per line):")
                for argument in command { print("  \(argument)") }
            }
            return 0
        }

        // From here on the container changes; every change is journalled.
        let stops = try StopSignals.install()
        try Supervisor.becomeSubreaper()
        let attacher = Attacher(socket: socket, nodeDirectory: "\(runDirectory)/taps", logger: logger,
                                afterStep: Self.faultInjection(environment))
        try makeDirectory(runDirectory, mode: 0o755)
        try makeDirectory(attacher.nodeDirectory, mode: 0o700)
        let restored = try attacher.recover(preparation.recovery)
        if !restored.isEmpty { logger.notice("restored \(restored.joined(separator: ", ")) after an earlier run that did not finish") }
        Self.faultInjection(environment)?(0)  // KVM_LAUNCH_TEST_KILL_AFTER_STEP=0: right after the recovery
        if !preparation.plan.interfaces.isEmpty && !preparation.descriptors.vhost {
            logger.notice("vhost-net is off: /dev/vhost-net is missing or does not open here; QEMU moves the packets itself")
        }

        let scope: Attacher.ScopeResult<SupervisionResult>
        do {
            scope = try await attacher.withAttachment(preparation.plan) { attachments in
                try await Self.withDHCPResponders(attachments, logger: logger) {
                    let mappings = try preparation.descriptors.mappings(for: attachments)
                    logger.info("starting \(command.joined(separator: " "))")
                    let supervisor = Supervisor(policy: ShutdownPolicy(powerdownTimeout: .seconds(configuration.shutdownTimeoutSeconds)), logger: logger)
                    do throws(SupervisorError) {
                        return try await supervisor.run(
                            ChildCommand(executable: preparation.qemuBinary, arguments: Array(command.dropFirst()),
                                         environment: environment, fileDescriptors: mappings),
                            stopActions: .qmp(socketPath: qmpSocketPath), stopRequests: stops)
                    } catch {
                        throw LaunchError.qemu(error)
                    }
                }
            }
        } catch let failure as Attacher.ScopeFailure {
            unlink(qmpSocketPath)
            throw LaunchFailure("\(failure)")
        }
        unlink(qmpSocketPath)
        let problems = scope.teardownProblems
        if problems.isEmpty {
            logger.info("the container's interfaces are restored")
        } else {
            logger.error("restoring the container's interfaces left problems: \(problems.map(\.description).joined(separator: "; "))")
        }
        let result = scope.value
        if result.succeeded {
            logger.info("the guest powered off; exiting 0")
        } else {
            logger.error("\(result)")
        }
        return problems.isEmpty ? result.exitCode : (result.exitCode == 0 ? 1 : result.exitCode)
    }

    /// Serves every attachment that has a lease with its own DHCP server while `body` runs, as child
    /// tasks of one group; the servers stop when `body` returns or throws.
    static func withDHCPResponders<Value: Sendable>(
        _ attachments: [Attachment], logger: Logger, _ body: () async throws -> Value
    ) async throws -> Value {
        var servers: [DHCPServer] = []
        for attachment in attachments {
            guard let lease = attachment.plan.lease else { continue }
            do {
                servers.append(try DHCPServer(interfaceName: attachment.plan.containerSideName, lease: lease.dhcpLease, logger: logger))
            } catch {
                throw LaunchError.dhcpServer(interface: attachment.plan.name, error)
            }
        }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for server in servers {
                group.addTask {
                    do { try await server.run() } catch { logger.error("DHCP server on \(server.interfaceName) stopped: \(error)") }
                }
            }
            defer { for server in servers { server.stop() } }
            let value = try await body()
            for server in servers { server.stop() }
            try await group.waitForAll()
            return value
        }
    }

    /// `KVM_LAUNCH_TEST_KILL_AFTER_STEP=N`: the launcher dies by SIGKILL right after attach step N
    /// (also as PID 1 of a PID namespace, see ``FaultInjection``); unset in any real deployment.
    static func faultInjection(_ environment: [String: String]) -> ((Int) -> Void)? {
        FaultInjection.hook(environment)
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

/// Creates `path` and any missing parents (parents with mode 0755).
func makeDirectory(_ path: String, mode: mode_t) throws {
    var built = ""
    let components = path.split(separator: "/")
    for (position, component) in components.enumerated() {
        built += "/" + component
        if mkdir(built, position == components.count - 1 ? mode : 0o755) != 0 && errno != EEXIST {
            throw LaunchFailure("cannot create \(built): \(String(cString: strerror(errno)))")
        }
    }
}
