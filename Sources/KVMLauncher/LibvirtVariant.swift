import FoundationEssentials
import LaunchConfiguration
import LauncherExecutor
import Logging
import NetAttach
import QEMU
import Supervisor

#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// `VM_BACKEND=libvirt` as a seam: the launcher (this target) knows only these protocols, and the
/// `kvm-launch-libvirt` executable supplies the implementation, so `kvm-launch` itself never links
/// libvirt. With `VM_BACKEND=libvirt`, `kvm-launch` replaces itself with `kvm-launch-libvirt`
/// (``LibvirtVariant/execIfRequested(arguments:environment:)``) before it does anything else.
package protocol LibvirtBackendProvider: Sendable {
    /// Everything the libvirt backend needs, checked before anything changes.
    func prepare(_ request: LibvirtRequest) throws -> any PreparedLibvirtDomain
    /// `kvm-launch status`: true when the private libvirtd reports the domain running (prints one line).
    func status(runDirectory: String) -> Bool
}

/// What the launcher hands the libvirt backend while planning.
package struct LibvirtRequest: Sendable {
    package var configuration: LaunchConfiguration
    package var environment: [String: String]
    /// `KVM_LAUNCH_RUN_DIR`, where the private daemons keep their files.
    package var runDirectoryBase: String
    package var qemu: QEMUConfiguration
    package var qemuBinary: String
    package var plan: AttachPlan
    /// The cloud-init seed disk's bytes (ISO 9660, label `cidata`), when `CLOUD_INIT` asks for one.
    package var seedImage: [UInt8]?
}

/// A domain the libvirt backend will run: shown by `--dry-run`, run inside the attachment scope.
package protocol PreparedLibvirtDomain: Sendable {
    /// The domain XML (`--dry-run`); the seed disk's path is a placeholder until ``run(_:)`` knows it.
    var domainXML: String { get }
    /// Starts the private daemons and the domain, supervises it until it stops, stops the daemons.
    func run(_ context: LibvirtRunContext) async throws -> SupervisionResult
}

/// What the launcher has made by the time the domain starts.
package struct LibvirtRunContext: Sendable {
    package var attachments: [Attachment]
    package var policy: ShutdownPolicy
    package var stops: AsyncStream<StopRequest>
    package var environment: [String: String]
    /// This launcher's own `vm-…` directory (made exclusively, removed at teardown).
    package var ownDirectory: String
    /// Writes a file into ``ownDirectory`` exclusively (never through a symbolic link); returns its path.
    package var writeFile: @Sendable (_ name: String, _ contents: [UInt8]) throws -> String
    package var logger: Logger
}

/// The entry points of the two executables.
package enum Launcher {
    /// The whole of a synchronous `main`: runs the launcher on kvm-launch's own executor, on the main
    /// thread (``LauncherExecutor/runMain(_:)``), so libdispatch's worker pool and its one-second
    /// monitor timer never start; exits when the launcher is done.
    package static func run(libvirt: (any LibvirtBackendProvider)?) -> Never {
        // Before any thread starts, for every subcommand (`status` talks to libvirtd too): a write to a
        // socket whose reader is gone fails with EPIPE instead of ending the process by signal.
        Supervisor.blockBrokenPipeSignal()
        LauncherExecutor.runMain {
            await main(libvirt: libvirt)
        }
    }

    /// Runs the launcher; `libvirt` is the backend `kvm-launch-libvirt` supplies (nil in `kvm-launch`).
    package static func main(libvirt: (any LibvirtBackendProvider)?) async {
        await LibvirtVariant.$provider.withValue(libvirt) {
            await KVMLaunch.main()
        }
    }
}

/// The libvirt variant of the launcher: the backend, when this executable has it, and the exec of
/// `kvm-launch-libvirt` when it does not.
enum LibvirtVariant {
    /// The backend of this executable (nil in `kvm-launch`).
    @TaskLocal static var provider: (any LibvirtBackendProvider)?

    /// The executable's file name, next to `kvm-launch`.
    static let name = "kvm-launch-libvirt"

    /// Whether `VM_BACKEND` asks for libvirt (the value is checked in full by the configuration).
    static func requested(_ environment: [String: String]) -> Bool {
        environment["VM_BACKEND"]?.lowercased() == LaunchConfiguration.Backend.libvirt.rawValue
    }

    /// In `kvm-launch` with `VM_BACKEND=libvirt`: replaces this process (same PID, arguments and
    /// environment) with `kvm-launch-libvirt` from the same directory. `--help` and `--version`
    /// stay here. Returns when nothing is to be done; exits with one line when it cannot run it.
    static func execIfRequested(arguments: [String], environment: [String: String]) {
        guard provider == nil, requested(environment) else { return }
        if let first = arguments.first, ["--help", "-h", "--version"].contains(first) { return }
        exec(arguments: arguments)
    }

    /// Replaces this process with `kvm-launch-libvirt ARGUMENTS…` (the environment unchanged).
    static func exec(arguments: [String]) -> Never {
        let executable = SiblingExecutable.path(name)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        fflush(nil)
        execv(executable, argv)
        let reason = Errno.current.description
        writeToStandardError(
            "Error: VM_BACKEND=libvirt needs the libvirt image variant (kvm-launch:libvirt, which has libvirtd and "
                + "\(name)): cannot run \(executable): \(reason); use that image, or VM_BACKEND=qemu\n")
        exit(1)
    }
}

/// Programs installed next to `kvm-launch` (`kvm-launch-config`, `kvm-launch-libvirt`).
enum SiblingExecutable {
    /// `name` in the directory of the running executable (symbolic links resolved).
    static func path(_ name: String) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let own = count > 0 ? String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
        let directory = own.lastIndex(of: "/").map { String(own[..<$0]) } ?? "."
        return (directory.isEmpty ? "" : directory) + "/" + name
    }
}

extension Launch {
    /// The libvirt backend's preparation; its errors become the launcher's one line.
    func prepareLibvirt(_ request: LibvirtRequest) throws(LaunchFailure) -> any PreparedLibvirtDomain {
        guard let provider = LibvirtVariant.provider else {
            // Not reached from `kvm-launch` (it execs `kvm-launch-libvirt` first); said plainly all the same.
            throw LaunchFailure("VM_BACKEND=libvirt needs the libvirt image variant (kvm-launch:libvirt, which has libvirtd and \(LibvirtVariant.name)); use that image, or VM_BACKEND=qemu")
        }
        do {
            return try provider.prepare(request)
        } catch let failure as LaunchFailure {
            throw failure
        } catch {
            throw LaunchFailure("\(error)")
        }
    }
}
