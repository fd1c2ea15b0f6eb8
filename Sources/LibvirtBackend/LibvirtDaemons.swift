import CLibvirtShims
import Foundation
import Libvirt
import Logging
import NetworkTypes
import SystemPackage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Why the libvirt backend could not start or run. Each case is one line for the user.
package enum LibvirtBackendError: Error, CustomStringConvertible, Sendable {
    /// libvirtd or virtlogd is not installed.
    case daemonMissing(String)
    /// A daemon could not be started, or exited before libvirtd answered.
    case daemonFailed(String)
    /// libvirtd did not answer in time.
    case daemonTimeout(seconds: Int, lastError: String)
    /// Preparing the private directories or files failed.
    case setup(String)
    /// libvirt refused the domain; `reason` is libvirt's own message.
    case domainRejected(reason: String)
    /// Another libvirt call failed.
    case libvirt(LibvirtError)

    package var description: String {
        switch self {
        case let .daemonMissing(name):
            "\(name) was not found (VM_BACKEND=libvirt needs Debian's libvirt-daemon, libvirt-daemon-driver-qemu and libvirt-clients in the image)"
        case let .daemonFailed(reason): reason
        case let .daemonTimeout(seconds, lastError):
            "libvirtd did not answer within \(seconds) s (last error: \(lastError))"
        case let .setup(reason): "cannot prepare libvirt's private directories: \(reason)"
        case let .domainRejected(reason): "libvirt refused the domain: \(reason)"
        case let .libvirt(error): "libvirt: \(error)"
        }
    }
}

/// A macvtap device node libvirt must find as `/dev/tap<ifindex>` in its private `/dev`.
package struct TapNode: Sendable, Equatable {
    /// `tap<ifindex>`.
    package var name: String
    package var device: dev_t

    package init(name: String, device: dev_t) {
        self.name = name
        self.device = device
    }

    /// The node for the macvtap `link`, from the device kvm-launch holds open as `descriptor` (the node it
    /// was opened through is already gone) and the link's ifindex (`/sys/class/net/LINK/ifindex`).
    package static func macvtap(link: String, descriptor: Int32, sysfs: String = "/sys/class/net") throws(LibvirtBackendError) -> TapNode {
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFCHR else {
            throw .setup("the descriptor of \(link) is not its macvtap device (\(Errno.current))")
        }
        guard let text = try? String(contentsOfFile: "\(sysfs)/\(link)/ifindex", encoding: .utf8),
              let index = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw .setup("cannot read the ifindex of \(link) from \(sysfs)/\(link)/ifindex")
        }
        return TapNode(name: "tap\(index)", device: info.st_rdev)
    }
}

/// The absolute paths of the daemons, found before anything changes.
package struct DaemonBinaries: Sendable, Equatable {
    package var libvirtd: String
    package var virtlogd: String

    package init(libvirtd: String, virtlogd: String) {
        self.libvirtd = libvirtd
        self.virtlogd = virtlogd
    }

    /// Looks for libvirtd and virtlogd on `PATH`, then in `fallbacks` (`/usr/sbin`, `/sbin`).
    package static func locate(searchPath: String, fallbacks: [String] = ["/usr/sbin", "/sbin"]) throws(LibvirtBackendError) -> DaemonBinaries {
        let directories = searchPath.split(separator: ":").map(String.init) + fallbacks
        func find(_ name: String) throws(LibvirtBackendError) -> String {
            for directory in directories where access("\(directory)/\(name)", X_OK) == 0 { return "\(directory)/\(name)" }
            throw .daemonMissing(name)
        }
        return DaemonBinaries(libvirtd: try find("libvirtd"), virtlogd: try find("virtlogd"))
    }
}

/// virtlogd and libvirtd, started as children of kvm-launch with the private configuration and
/// stopped by it. Also reaps every child of this process (QEMU, daemonized by libvirt, becomes
/// kvm-launch's child as PID 1 or subreaper).
package final class LibvirtDaemons: Sendable {
    package let configuration: PrivateConfiguration
    package let libvirtd: pid_t
    package let virtlogd: pid_t
    let reaper: ChildReaper
    let logger: Logger

    /// Starts both daemons and waits (at most `timeout`) until libvirtd answers on its socket.
    /// A leftover of an earlier run (daemons, QEMU, state) is removed first.
    package static func start(_ configuration: PrivateConfiguration, binaries: DaemonBinaries, taps: [TapNode],
                             environment: [String: String], timeout: Duration = .seconds(60), reapOrphans: Bool = true,
                             logger: Logger) async throws(LibvirtBackendError) -> (LibvirtDaemons, Connection) {
        removeLeftovers(configuration, logger: logger)
        try prepareDirectories(configuration)
        let reaper = ChildReaper.shared
        reaper.start(reapAll: reapOrphans)
        let virtlogd = try spawn(configuration.virtlogdArguments(binary: binaries.virtlogd), configuration: configuration,
                                 taps: [], privateDev: false, output: configuration.virtlogdOutput, environment: environment)
        let libvirtd: pid_t
        do {
            libvirtd = try spawn(configuration.libvirtdArguments(binary: binaries.libvirtd), configuration: configuration,
                                 taps: taps, privateDev: true, output: configuration.libvirtdOutput, environment: environment)
        } catch {
            kill(virtlogd, SIGKILL)
            throw error
        }
        reaper.track(virtlogd)
        reaper.track(libvirtd)
        let daemons = LibvirtDaemons(configuration: configuration, libvirtd: libvirtd, virtlogd: virtlogd, reaper: reaper, logger: logger)
        logger.info("started virtlogd (pid \(virtlogd)) and libvirtd (pid \(libvirtd)); virsh -c '\(configuration.uri)'")
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var lastError = "no answer yet"
        while true {
            for (name, pid) in [("libvirtd", libvirtd), ("virtlogd", virtlogd)] {
                if let status = reaper.exitStatus(of: pid) {
                    await daemons.stop()
                    let detail = lastLine(of: name == "libvirtd" ? configuration.libvirtdOutput : configuration.virtlogdOutput)
                        ?? lastLine(of: configuration.libvirtdLog) ?? "no message"
                    throw .daemonFailed("\(name) exited at start (\(describe(status))): \(detail)")
                }
            }
            do {
                let connection = try Connection(uri: configuration.uri)
                return (daemons, connection)
            } catch {
                lastError = error.message
            }
            if clock.now >= deadline {
                await daemons.stop()
                let seconds = Int(timeout.components.seconds)
                throw .daemonTimeout(seconds: seconds, lastError: lastError)
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    init(configuration: PrivateConfiguration, libvirtd: pid_t, virtlogd: pid_t, reaper: ChildReaper, logger: Logger) {
        self.configuration = configuration
        self.libvirtd = libvirtd
        self.virtlogd = virtlogd
        self.reaper = reaper
        self.logger = logger
    }

    /// True while libvirtd has not exited.
    package var libvirtdRunning: Bool { reaper.exitStatus(of: libvirtd) == nil }

    /// SIGTERM to libvirtd then virtlogd, SIGKILL after 5 s each; then any QEMU libvirt left
    /// behind (from its pid files) is killed. Returns once both daemons are reaped.
    package func stop() async {
        for pid in [libvirtd, virtlogd] {
            guard reaper.exitStatus(of: pid) == nil else { continue }
            kill(pid, SIGTERM)
            if await !reaper.wait(for: pid, timeout: .seconds(5)) {
                logger.warning("pid \(pid) did not exit after SIGTERM; killing it")
                kill(pid, SIGKILL)
                _ = await reaper.wait(for: pid, timeout: .seconds(5))
            }
        }
        Self.killRecorded(in: configuration.qemuStateDirectory, processPrefix: "qemu", logger: logger)
    }

    // MARK: - Start-up helpers

    /// Daemons and QEMU processes recorded by an earlier run of this container (when kvm-launch
    /// was killed without being PID 1 of its namespace), then the old private tree.
    static func removeLeftovers(_ configuration: PrivateConfiguration, logger: Logger) {
        for (file, name) in [(configuration.libvirtdPidFile, "libvirtd"), (configuration.virtlogdPidFile, "virtlogd")] {
            if let pid = recordedProcess(file, processPrefix: name) {
                logger.notice("stopping \(name) (pid \(pid)) left by an earlier run")
                kill(pid, SIGKILL)
            }
        }
        killRecorded(in: configuration.qemuStateDirectory, processPrefix: "qemu", logger: logger)
        try? FileManager.default.removeItem(atPath: configuration.root)
    }

    static func killRecorded(in directory: String, processPrefix: String, logger: Logger) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasSuffix(".pid") {
            if let pid = recordedProcess("\(directory)/\(name)", processPrefix: processPrefix) {
                logger.notice("killing QEMU (pid \(pid)) that libvirt left behind")
                kill(pid, SIGKILL)
            }
        }
    }

    /// The pid in `file` when that process still exists and its name starts with `processPrefix`.
    static func recordedProcess(_ file: String, processPrefix: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1,
              let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8),
              comm.hasPrefix(processPrefix) else { return nil }
        return pid
    }

    static func prepareDirectories(_ configuration: PrivateConfiguration) throws(LibvirtBackendError) {
        let directories = [configuration.root] + configuration.binds.map(\.source) + [configuration.deviceStage]
        for directory in directories {
            if mkdir(directory, 0o700) != 0 && Errno.current != .fileExists {
                throw .setup("mkdir \(directory): \(Errno.current)")
            }
            var info = stat()
            guard lstat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                throw .setup("\(directory) is not a directory")
            }
        }
        for file in configuration.files {
            do {
                try file.contents.write(toFile: file.path, atomically: true, encoding: .utf8)
            } catch {
                throw .setup("write \(file.path): \(error.localizedDescription)")
            }
        }
    }

    static func spawn(_ arguments: [String], configuration: PrivateConfiguration, taps: [TapNode], privateDev: Bool,
                      output: String, environment: [String: String]) throws(LibvirtBackendError) -> pid_t {
        let outputFD = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard outputFD >= 0 else { throw .setup("open \(output): \(Errno.current)") }
        defer { close(outputFD) }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let sources = configuration.binds.map { UnsafePointer(strdup($0.source)) }
        let targets = configuration.binds.map { UnsafePointer(strdup($0.target)) }
        let nodeNames = taps.map { strdup($0.name) }
        defer {
            for pointer in argv + envp + nodeNames { free(pointer) }
            for pointer in sources + targets { free(UnsafeMutablePointer(mutating: pointer)) }
        }
        let nodes = zip(taps, nodeNames).map { kvml_device_node(name: UnsafePointer($1), device: $0.device) }
        var failedStep: UnsafePointer<CChar>?
        let pid = nodes.withUnsafeBufferPointer { nodeBuffer in
            kvml_spawn_private_mounts(arguments[0], argv, envp, sources, targets, Int32(sources.count),
                                      privateDev ? configuration.deviceStage : nil, nodeBuffer.baseAddress, Int32(nodes.count),
                                      outputFD, &failedStep)
        }
        guard pid > 0 else {
            let step = failedStep.map { String(cString: $0) } ?? "fork"
            throw .daemonFailed("cannot start \(arguments[0]): \(step) failed: \(Errno.current)")
        }
        return pid
    }

    static func lastLine(of path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return text.split(separator: "\n").last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map(String.init)
    }

    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7F
        return signal == 0 ? "status \((status >> 8) & 0xFF)" : "signal \(signal)"
    }
}

/// Reaps children on a thread of its own, remembering the status of each, so the daemons' exits
/// are seen. In kvm-launch (`reapAll`) every child is reaped (`waitpid(-1)`): QEMU, daemonized by
/// libvirt, is re-parented to kvm-launch and must leave no zombie. A process that has other
/// children of its own (the tests) reaps only the daemons it tracks.
final class ChildReaper: Sendable {
    static let shared = ChildReaper()

    private let state = Mutex<(started: Bool, reapAll: Bool, tracked: Set<pid_t>, exits: [pid_t: Int32])>((false, false, [], [:]))

    func track(_ pid: pid_t) { state.withLock { _ = $0.tracked.insert(pid) } }

    func start(reapAll: Bool) {
        let first = state.withLock { value in
            defer { value.started = true; value.reapAll = value.reapAll || reapAll }
            return !value.started
        }
        guard first else { return }
        startDetachedThread(named: "libvirt-reaper") { self.loop() }
    }

    private func loop() {
        while true {
            var status: Int32 = 0
            let (reapAll, tracked) = state.withLock { ($0.reapAll, $0.tracked) }
            if reapAll {
                let pid = waitpid(-1, &status, 0)
                if pid > 0 {
                    state.withLock { $0.exits[pid] = status }
                } else if Errno.current == .noChildProcess {
                    usleep(100_000)
                }
                continue
            }
            for pid in tracked where waitpid(pid, &status, WNOHANG) == pid {
                state.withLock { value in
                    value.exits[pid] = status
                    value.tracked.remove(pid)
                }
            }
            usleep(50_000)
        }
    }

    func exitStatus(of pid: pid_t) -> Int32? { state.withLock { $0.exits[pid] } }

    /// Waits until `pid` was reaped; false after `timeout`.
    func wait(for pid: pid_t, timeout: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while exitStatus(of: pid) == nil {
            if clock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return true
    }
}
