import ContainerInstance
import DHCPServer
import DNSRelay
import IPv6Server
import FoundationEssentials
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

    /// This container's QMP socket: abstract, named after the PID namespace (``QMPSocketName``);
    /// never a file under the (possibly shared) run directory.
    static var qmpSocketPath: String { QMPSocketName.current() ?? "@kvm-launch/qmp" }

    /// The shared base (`KVM_LAUNCH_RUN_DIR`, validated by the configuration).
    var runDirectoryBase: String { configuration.runDirectory }
    /// The same base, as the libvirt backend (which keeps its private daemon's files there) reads it.
    var runDirectory: String { configuration.runDirectory }
    static func runDirectory(_ environment: [String: String]) -> String {
        environment["KVM_LAUNCH_RUN_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? RunDirectory.defaultBase
    }
    var qmpSocketPath: String { Self.qmpSocketPath }

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
        /// The checked disk's open files, handed to QEMU as they are (nil with `KVM_BLK_OPTS`).
        var disk: OpenedDiskImage?
        /// Things to say that are not errors.
        var warnings: [String] = []
        /// The cloud-init seed, built in memory (nil when `CLOUD_INIT` asks for none).
        var seed: SeedPreparation? = nil
        /// `VM_BACKEND=libvirt`: the daemons and the domain (nil for the direct path).
        var libvirt: (any PreparedLibvirtDomain)?
    }

    func prepare(socket: NetlinkSocket) throws -> Preparation {
        do {
            try RunDirectory.validate(base: runDirectoryBase)
        } catch {
            throw LaunchFailure("\(error)")
        }
        let qemuBinary = try Preflight.resolveLauncher(configuration.qemuBinary, searchPath: environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")
        if configuration.legacy.cpuOptions == nil { try Preflight.checkMemory(configuration.memoryMiB) }
        var disk: OpenedDiskImage?
        if configuration.legacy.blockOptions == nil {
            let policy = DiskImagePolicy(format: configuration.imageFormat.flatMap(DiskImageFormat.init(rawValue:)),
                                         backingAnywhere: configuration.imageBackingAnywhere)
            disk = try Preflight.checkImage(path: configuration.imagePath, policy: policy)
        }
        var warnings: [String] = []
        // The container's own name is the default: used only when it is a valid host name.
        var containerHostname = Self.hostname()
        if configuration.hostname == nil, let name = containerHostname, let problem = LaunchConfiguration.hostnameProblem(name) {
            warnings.append("the container's host name \(LaunchConfiguration.quoted(name)) \(problem), so the VM gets none; set VM_HOSTNAME")
            containerHostname = nil
        }
        let acceleration = try AccelerationProbe.choose(mode: AccelerationMode(rawValue: configuration.acceleration.rawValue) ?? .auto)

        let inventory = try Inventory.read(from: socket)
        // A namespace left behind by a killed launcher is planned as it will be once restored.
        let recovery = RecoveryPlan(inventory)
        let clean = recovery.applied(to: inventory)
        let decisions = try InterfaceSelection.decide(clean, selection: configuration.selection)
        var planner = AttachPlanner(configuration: configuration, resolver: Self.readResolver(), hostname: containerHostname)
        let selectedLinks = InterfaceSelection.selected(decisions)
        if configuration.dhcpEnabled {
            // A global IPv6 gateway (Docker's): its link-local address, asked on the link before any change.
            planner.ipv6Gateways = learnIPv6Gateways(IPv6LeasePlan.gatewayQuestions(selected: selectedLinks, planned: clean, current: inventory))
        }
        var generator = SystemRandomNumberGenerator()
        let plan = try planner.plan(selected: selectedLinks, inventory: clean, using: &generator)
        try Self.checkLeases(plan)

        let descriptors = DescriptorLayout(nics: plan.interfaces.count, queues: configuration.netQueues, vhost: TapDevices.vhostNetUsable())
        var legacy = LegacyOptions(cpu: configuration.legacy.cpuOptions, block: configuration.legacy.blockOptions,
                                   video: configuration.legacy.videoOptions)
        if !configuration.legacy.kvmOptions.isEmpty { legacy.base = configuration.legacy.kvmOptions }
        let seed = try SeedPreparation.prepare(configuration: configuration, plan: plan,
                                               hostname: configuration.hostname ?? containerHostname, disk: disk)
        let diskDescriptors = disk?.descriptors.count ?? 0
        var qemu = QEMUConfiguration(
            accelerator: acceleration.accelerator, memoryMiB: configuration.memoryMiB, vcpus: configuration.cpus,
            disk: disk.map { DiskImage(layers: $0.image.layers, firstDescriptor: descriptors.next) },
            nics: descriptors.cards(for: plan.interfaces),
            graphics: configuration.graphics ? .legacyVGA : .none,
            qmpSocketPath: qmpSocketPath, name: configuration.hostname ?? containerHostname, legacy: legacy,
            extraArguments: configuration.extraArguments)
        // The seed's descriptor follows the NICs' and the disk's.
        if seed != nil { qemu.seedDescriptor = descriptors.next + Int32(diskDescriptors) }
        _ = try qemu.arguments()  // validates
        let libvirt = configuration.backend == .libvirt
            ? try prepareLibvirt(LibvirtRequest(configuration: configuration, environment: environment, runDirectoryBase: runDirectoryBase,
                                                qemu: qemu, qemuBinary: qemuBinary, plan: plan, seedImage: seed?.image))
            : nil
        return Preparation(qemuBinary: qemuBinary, plan: plan, qemu: qemu, descriptors: descriptors,
                           inventory: inventory, recovery: recovery, accelerationWarning: acceleration.warning,
                           disk: disk, warnings: warnings, seed: seed, libvirt: libvirt)
    }

    /// Asks each global IPv6 gateway for its link-local address (``GatewayProbe``: one interface at
    /// a time, at most 2 × 2.1 s each when the gateway does not answer). A gateway that does not
    /// answer is not an error: the VM then gets its IPv6 addresses without a default route, and the
    /// plan's warning says why.
    func learnIPv6Gateways(_ questions: [IPv6GatewayQuestion]) -> [Int32: IPv6GatewayAnswer] {
        var answers: [Int32: IPv6GatewayAnswer] = [:]
        for question in questions {
            let started = ContinuousClock.now
            do throws(GatewayDiscoveryError) {
                let found = try GatewayProbe.discover(gateway: question.gateway, interfaceName: question.interfaceName,
                                                      localLinkLocal: question.localLinkLocal)
                let took = Self.milliseconds(ContinuousClock.now - started)
                logger.info("\(question.interfaceName): the IPv6 gateway \(question.gateway) is \(found) on the link (learned in \(took)): the VM's default router")
                answers[question.interfaceIndex] = .learned(found.address)
            } catch {
                answers[question.interfaceIndex] = .unknown("\(error)")
            }
        }
        return answers
    }

    /// `duration` as milliseconds with one decimal and grouped thousands (`"12.3 ms"`, `"4,200.0 ms"`),
    /// the form Foundation's `.units(allowed: [.milliseconds], fractionalPart: .show(length: 1))` printed.
    static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let tenths = Int((Double(seconds) * 10_000 + Double(attoseconds) / 1e14).rounded())
        var whole = String(abs(tenths) / 10)
        var grouped = ""
        while whole.count > 3 {
            grouped = "," + whole.suffix(3) + grouped
            whole.removeLast(3)
        }
        return (tenths < 0 ? "-" : "") + whole + grouped + ".\(abs(tenths) % 10) ms"
    }

    /// Every planned DHCP answer must fit DHCP and give the VM a host address (not its subnet's
    /// network or broadcast address): found here, before anything changes, not when the server starts.
    static func checkLeases(_ plan: AttachPlan) throws {
        for interface in plan.interfaces {
            guard let lease = interface.lease else { continue }
            let address = lease.address
            if address.prefixLength <= 30 {
                let hostBits = UInt32.max >> UInt32(address.prefixLength)
                if address.address.value & hostBits == 0 || address.address.value & hostBits == hostBits {
                    let which = address.address.value & hostBits == 0 ? "network" : "broadcast"
                    throw LaunchFailure("cannot attach \(interface.name): its address \(address) is the \(which) address of its subnet, which no host can use; give the interface a host address, or set ENABLE_DHCP=no")
                }
            }
            do {
                try lease.dhcpLease.validate()
            } catch {
                throw LaunchFailure("cannot attach \(interface.name): \(error)")
            }
        }
    }

    /// Runs the launch; returns the process exit status.
    ///
    /// One scope owns every change: ``Attacher/withAttachment(_:_:)`` attaches, runs the DHCP
    /// responders and QEMU's supervisor inside it, and undoes the journal on every way out.
    func run() async throws -> Int32 {
        let socket = try NetlinkSocket()
        let preparation = try prepare(socket: socket)
        for warning in configuration.warnings + preparation.warnings + preparation.plan.warnings { logger.warning("\(warning)") }
        if let warning = preparation.accelerationWarning { logger.warning("\(warning)") }
        let command = [preparation.qemuBinary] + (try preparation.qemu.arguments())

        if case .dryRun(let json) = mode {
            let seedLines = preparation.seed?.reportLines()
            let domainXML = preparation.libvirt?.domainXML
            if json {
                print(PlanReport.json(preparation.plan, qemuArguments: domainXML == nil ? command : nil, recovery: preparation.recovery,
                                      libvirtDomainXML: domainXML, cloudInit: seedLines))
            } else if let domainXML {
                print(PlanReport.text(preparation.plan, recovery: preparation.recovery))
                if let seedLines {
                    print("\ncloud-init seed (a read-only raw NoCloud disk, label cidata, written at start into this launcher's run directory):")
                    for line in seedLines { print("  \(line)") }
                }
                print("\nlibvirt domain (VM_BACKEND=libvirt):")
                print(domainXML, terminator: "")
            } else {
                print(PlanReport.text(preparation.plan, recovery: preparation.recovery))
                if let seedLines {
                    print("\ncloud-init seed (a read-only NoCloud disk, label cidata):")
                    for line in seedLines { print("  \(line)") }
                }
                print("\nQEMU command line (one argument per line):")
                for argument in command { print("  \(argument)") }
            }
            return 0
        }

        // Another QEMU already serving this container's QMP name (a second launcher in the same
        // network and PID namespaces) would take status and stop requests: refuse before any change.
        // A QEMU that was just killed frees the name within moments: allow it up to 2 s.
        var inUse = QMPClient.isListening(at: qmpSocketPath)
        for _ in 0..<40 where inUse {
            try await Task.sleep(for: .milliseconds(50))
            inUse = QMPClient.isListening(at: qmpSocketPath)
        }
        if inUse {
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
        let abandoned = RunDirectory.removeAbandoned(in: runDirectoryBase, deviceNodePrefix: LinkMarker.tapNamePrefix)
        if !abandoned.isEmpty { logger.info("removed \(abandoned.count) run director\(abandoned.count == 1 ? "y" : "ies") left by launchers that are gone: \(abandoned.joined(separator: ", "))") }
        // QEMU's console makes the terminal raw; put it back however this ends (QEMU killed included).
        let terminal = TerminalSettings.save()
        defer { terminal?.restore() }

        // The descriptor table at its final size now: growing it later, once per doubling, waits for
        // a kernel grace period each time (see DescriptorTable).
        DescriptorTable.reserve(slots: DescriptorTable.slots(interfaces: preparation.plan.interfaces.count, queues: configuration.netQueues))

        // From here on the container changes; every change is journalled.
        let stops = try StopSignals.install()
        try Supervisor.becomeSubreaper()
        let attacher = Attacher(socket: socket, nodeDirectory: runDirectory.path, logger: logger,
                                afterStep: Self.faultInjection(environment))
        let restored = try attacher.recover(preparation.recovery)
        if !restored.isEmpty { logger.notice("restored \(restored.joined(separator: ", ")) after an earlier run that did not finish") }
        Self.faultInjection(environment)?(0)  // KVM_LAUNCH_TEST_KILL_AFTER_STEP=0: right after the recovery
        if !preparation.plan.interfaces.isEmpty && !preparation.descriptors.vhost {
            logger.notice("vhost-net is off: /dev/vhost-net is missing or does not open here; QEMU moves the packets itself")
        }

        // QEMU gets the very disk files that were checked (`-add-fd`), never their paths.
        var diskMappings: [FileDescriptorMapping] = []
        if let disk = preparation.disk, let first = preparation.qemu.disk?.firstDescriptor {
            for (offset, descriptor) in disk.descriptors.enumerated() {
                diskMappings.append(FileDescriptorMapping(parent: descriptor, child: first + Int32(offset)))
            }
        }

        // The seed: an anonymous memory file, read-only, at the descriptor the command line names.
        // (VM_BACKEND=libvirt: the backend writes it into this launcher's run directory instead.)
        if let seed = preparation.seed, let child = preparation.qemu.seedDescriptor {
            if preparation.libvirt == nil {
                let descriptor = try seed.readOnlyDescriptor()
                diskMappings.append(FileDescriptorMapping(parent: descriptor, child: child))
            }
            logger.info("cloud-init seed: \(seed.seed.redactedSummary().split(separator: "\n").joined(separator: "; "))")
        }

        let scope: Attacher.ScopeResult<SupervisionResult>
        do {
            scope = try await attacher.withAttachment(preparation.plan) { attachments in
                // While the responders close their sockets, kvm-launch's own links and descriptors go
                // (their kernel grace periods overlap); the container's interfaces are restored only
                // after every responder is gone (the scope's teardown).
                try await Self.withDHCPResponders(attachments, logger: logger, whileStopping: { _ = attacher.releaseOwnLinks() }) {
                    if let libvirt = preparation.libvirt {
                        return try await libvirt.run(LibvirtRunContext(
                            attachments: attachments,
                            policy: ShutdownPolicy(powerdownTimeout: .seconds(configuration.shutdownTimeoutSeconds)),
                            stops: stops, environment: environment, ownDirectory: runDirectory.path,
                            writeFile: { name, contents in try runDirectory.createFile(named: name, contents: contents) },
                            logger: logger))
                    }
                    let mappings = try preparation.descriptors.mappings(for: attachments) + diskMappings
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
            throw LaunchFailure("\(failure)")
        }
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

    /// Serves every attachment that has a lease with its own DHCP server, every one with an IPv6
    /// lease with its own Router Advertisement + DHCPv6 responder, and every one whose plan has
    /// a DNS relay with that relay, while `body` runs, as child tasks of one group; they stop when
    /// `body` returns or throws, all at once, and this returns once every one has returned (each
    /// closes its sockets on its own thread as it ends). `whileStopping` runs after they were told to
    /// stop, before waiting for them.
    static func withDHCPResponders<Value: Sendable>(
        _ attachments: [Attachment], logger: Logger, whileStopping: () -> Void = {}, _ body: () async throws -> Value
    ) async throws -> Value {
        var servers: [DHCPServer] = []
        var relays: [DNSRelay] = []
        var ipv6Servers: [IPv6Server] = []
        for attachment in attachments {
            if let lease = attachment.plan.ipv6Lease {
                do {
                    ipv6Servers.append(try IPv6Server(interfaceName: attachment.plan.containerSideName, lease: lease, logger: logger))
                } catch {
                    throw LaunchError.ipv6Server(interface: attachment.plan.name, error)
                }
            }
            guard let lease = attachment.plan.lease else { continue }
            do {
                servers.append(try DHCPServer(interfaceName: attachment.plan.containerSideName, lease: lease.dhcpLease, logger: logger))
            } catch {
                throw LaunchError.dhcpServer(interface: attachment.plan.name, error)
            }
            guard let relay = attachment.plan.dnsRelay else { continue }
            do {
                relays.append(try DNSRelay(interfaceName: attachment.plan.containerSideName, configuration: relay.relayConfiguration, logger: logger))
            } catch {
                throw LaunchError.dnsRelay(interface: attachment.plan.name, error)
            }
        }
        let stopAll = { [servers, relays, ipv6Servers] in
            for server in servers { server.stop() }
            for server in ipv6Servers { server.stop() }
            for relay in relays { relay.stop() }
        }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for server in servers {
                group.addTask {
                    do { try await server.run() } catch { logger.error("DHCP server on \(server.interfaceName) stopped: \(error)") }
                }
            }
            for server in ipv6Servers {
                group.addTask {
                    do { try await server.run() } catch { logger.error("IPv6 responder on \(server.interfaceName) stopped: \(error)") }
                }
            }
            for relay in relays {
                group.addTask {
                    do { try await relay.run() } catch { logger.error("DNS relay on \(relay.interfaceName) stopped: \(error)") }
                }
            }
            defer { stopAll() }
            let value = try await body()
            stopAll()
            whileStopping()
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
