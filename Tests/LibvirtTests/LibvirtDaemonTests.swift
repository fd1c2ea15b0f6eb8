import Foundation
import Libvirt
import LibvirtBackend
import Logging
import QEMU
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A real libvirtd and virtlogd started by the backend in a private run directory: they answer
/// on the private socket (also to `virsh`), libvirt's own reason comes back when it refuses a
/// domain, and stopping leaves no daemon behind.
@Suite(.serialized, .enabled(if: isRoot, "needs root: starts libvirtd in a mount namespace of its own"))
struct LibvirtDaemonTests {
    static let logger = Logger(label: "libvirt-test")

    static func runDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kl-libvirt-\(uniqueSuffix())").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func alive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        // A zombie is gone for our purposes.
        let status = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return !status.contains(") Z ")
    }

    @Test func privateDaemonAnswersRefusesABadDomainWithItsReasonAndStopsCleanly() async throws {
        let directory = try Self.runDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = PrivateConfiguration(runDirectory: directory)
        let binaries = try DaemonBinaries.locate(searchPath: "/usr/sbin:/usr/bin")
        let (daemons, connection) = try await LibvirtDaemons.start(configuration, binaries: binaries, taps: [],
                                                                    environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], reapOrphans: false,
                                                                    logger: Self.logger)
        #expect(connection.isAlive)
        #expect(try connection.runningDomainNames().isEmpty)
        #expect(FileManager.default.fileExists(atPath: configuration.socketPath), "the socket is under the run directory")
        #expect(FileManager.default.fileExists(atPath: configuration.libvirtdPidFile), "so is its pid file (libvirtd's /run/libvirt is private)")

        // virsh from outside the daemons' namespace, through the URI kvm-launch prints.
        let virsh = try run(["virsh", "-c", configuration.uri, "list", "--all"], check: false)
        #expect(virsh.status == 0, "virsh: \(virsh.stderr)")
        #expect(virsh.stdout.contains("Name"))
        // No TCP listener: libvirtd owns only unix sockets.
        let sockets = try run(["ss", "-lntp"], check: false).stdout
        #expect(!sockets.contains("pid=\(daemons.libvirtd),"), "libvirtd listens on no TCP port: \(sockets)")

        // A domain libvirt refuses: its reason comes back.
        let definition = DomainDefinition(name: "refused", emulator: "/usr/bin/qemu-system-x86_64", accelerator: .tcg, memoryMiB: 64, vcpus: 1,
                                          disk: DiskImage(path: "\(directory)/missing.qcow2", format: .qcow2), nics: [])
        do {
            _ = try connection.createDomain(xml: definition.xml(), autoDestroy: true)
            Issue.record("libvirt started a domain whose disk does not exist")
        } catch {
            #expect(error.operation == "virDomainCreateXML")
            #expect(error.message.contains("missing.qcow2"), "libvirt's message names the disk: \(error.message)")
        }

        connection.close()
        await daemons.stop()
        #expect(!Self.alive(daemons.libvirtd), "libvirtd is gone")
        #expect(!Self.alive(daemons.virtlogd), "virtlogd is gone")
    }

    static func startFailure(_ configuration: PrivateConfiguration, binaries: DaemonBinaries) async -> LibvirtBackendError? {
        do {
            let (daemons, connection) = try await LibvirtDaemons.start(configuration, binaries: binaries, taps: [], environment: [:],
                                                                        timeout: .seconds(20), reapOrphans: false, logger: logger)
            connection.close()
            await daemons.stop()
            return nil
        } catch {
            return error
        }
    }

    @Test func aDaemonThatCannotStartIsOneClearError() async throws {
        let directory = try Self.runDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // /bin/false as "libvirtd": it exits at once with status 1.
        let virtlogd = try DaemonBinaries.locate(searchPath: "/usr/sbin").virtlogd
        let binaries = DaemonBinaries(libvirtd: "/bin/false", virtlogd: virtlogd)
        let failure = await Self.startFailure(PrivateConfiguration(runDirectory: directory), binaries: binaries)
        guard case let .daemonFailed(reason) = failure else {
            Issue.record("a libvirtd that exits at once was not reported as failed: \(String(describing: failure))")
            return
        }
        #expect(reason.contains("libvirtd exited at start (status 1)"), "\(reason)")
        do {
            _ = try DaemonBinaries.locate(searchPath: "/nonexistent", fallbacks: [])
            Issue.record("found a libvirtd where there is none")
        } catch {
            guard case .daemonMissing("libvirtd") = error else { Issue.record("unexpected error \(error)"); return }
            #expect(error.description.contains("libvirt-daemon"), "says which package to install")
        }
    }
}
