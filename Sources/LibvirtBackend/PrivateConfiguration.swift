/// The private libvirt setup of one container: where everything lives and the configuration files
/// written at start. Pure: paths and file contents only.
///
/// libvirtd and virtlogd run in a mount namespace of their own in which this container's
/// `RUN/libvirt/{etc,run,lib,cache,log}` are bind-mounted on `/etc/libvirt`, `/run/libvirt`,
/// `/var/lib/libvirt`, `/var/cache/libvirt` and `/var/log/libvirt`: a root libvirtd cannot be told
/// to keep its configuration and state anywhere else, and with the binds two containers (or two
/// tests) sharing a file system never see each other's daemon, domains or pid files. Seen from
/// outside (kvm-launch, `virsh`), the socket is `RUN/libvirt/run/libvirt-sock`.
package struct PrivateConfiguration: Sendable, Equatable {
    /// `RUN/libvirt`.
    package var root: String
    /// Whether QEMU may be placed in cgroups (`LIBVIRT_CGROUPS=yes`); off by default in a container.
    package var cgroups: Bool

    package init(runDirectory: String, cgroups: Bool = false) {
        root = runDirectory.hasSuffix("/") ? "\(runDirectory)libvirt" : "\(runDirectory)/libvirt"
        self.cgroups = cgroups
    }

    /// The directories bind-mounted into the daemons' view, as (outside, inside).
    package var binds: [(source: String, target: String)] {
        [("\(root)/etc", "/etc/libvirt"), ("\(root)/run", "/run/libvirt"), ("\(root)/lib", "/var/lib/libvirt"),
         ("\(root)/cache", "/var/cache/libvirt"), ("\(root)/log", "/var/log/libvirt")]
    }

    /// Where the daemons' private `/dev` is assembled (a tmpfs in their namespace only).
    package var deviceStage: String { "\(root)/dev" }

    /// libvirtd's socket, seen from outside its namespace.
    package var socketPath: String { "\(root)/run/libvirt-sock" }

    /// The URI for this libvirtd (`virsh -c URI`, `LIBVIRT_DEFAULT_URI`).
    package var uri: String { "qemu:///system?socket=\(socketPath)" }

    /// libvirtd's and virtlogd's pid files, outside view.
    package var libvirtdPidFile: String { "\(root)/run/libvirtd.pid" }
    package var virtlogdPidFile: String { "\(root)/run/virtlogd.pid" }
    /// Per-domain pid files libvirtd writes (`NAME.pid`), outside view.
    package var qemuStateDirectory: String { "\(root)/run/qemu" }
    /// The daemons' stdout/stderr (only early start-up problems land here; they log to files).
    package var libvirtdOutput: String { "\(root)/log/libvirtd.out" }
    package var virtlogdOutput: String { "\(root)/log/virtlogd.out" }
    package var libvirtdLog: String { "\(root)/log/libvirtd.log" }
    /// QEMU's own messages for domain NAME (stdout/stderr through virtlogd).
    package func qemuLog(domain: String) -> String { "\(root)/log/qemu/\(domain).log" }

    /// The files written at start: (path outside, contents).
    package var files: [(path: String, contents: String)] {
        [("\(root)/etc/libvirtd.conf", libvirtdConf), ("\(root)/etc/virtlogd.conf", virtlogdConf), ("\(root)/etc/qemu.conf", qemuConf)]
    }

    /// The daemons' command lines, paths as seen inside their namespace.
    package func libvirtdArguments(binary: String) -> [String] {
        [binary, "--config", "/etc/libvirt/libvirtd.conf", "--pid-file", "/run/libvirt/libvirtd.pid"]
    }

    package func virtlogdArguments(binary: String) -> [String] {
        [binary, "--config", "/etc/libvirt/virtlogd.conf", "--pid-file", "/run/libvirt/virtlogd.pid"]
    }

    static let header = "# Written by kvm-launch at start (VM_BACKEND=libvirt); rewritten at every start.\n"

    /// A unix socket only (libvirtd is never started with --listen; TCP and TLS are off besides),
    /// root-only, no authentication beyond that; logs to a file.
    package var libvirtdConf: String {
        Self.header + """
            listen_tls = 0
            listen_tcp = 0
            unix_sock_group = "root"
            unix_sock_ro_perms = "0700"
            unix_sock_rw_perms = "0700"
            unix_sock_admin_perms = "0700"
            auth_unix_ro = "none"
            auth_unix_rw = "none"
            log_outputs = "3:file:/var/log/libvirt/libvirtd.log"

            """
    }

    package var virtlogdConf: String {
        Self.header + """
            log_outputs = "3:file:/var/log/libvirt/virtlogd.log"

            """
    }

    /// QEMU as a container needs it: no private mount namespace per domain, no cgroup controllers
    /// (unless asked), QEMU runs as root, libvirt neither changes nor remembers file owners, and no
    /// security driver (the container is the confinement).
    package var qemuConf: String {
        Self.header + """
            user = "root"
            group = "root"
            dynamic_ownership = 0
            remember_owner = 0
            namespaces = [ ]
            security_driver = "none"
            stdio_handler = "logd"

            """ + (cgroups ? "" : "cgroup_controllers = [ ]\n")
    }
}
