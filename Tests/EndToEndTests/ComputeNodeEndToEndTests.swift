import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The nova-compute host image (image/compute/build.sh) booted by kvm-launch the way docker/k8s/compute-node.yaml
/// runs it, against a real controller on the node side (the peer namespace): etcd loaded with the deployment's
/// reference data (RabbitMQ, placement and the databases pointed at the test's own), Debian's RabbitMQ, Debian's
/// placement (python3-placement, sqlite, no keystone) and Debian's nova-conductor (python3-nova, its nova.conf
/// rendered from the same etcd, sqlite API and cell databases made with nova-manage). The pod's init step
/// (`kvm-launch config user-data`, `MY_IP` = the pod's address) writes the user data and the launcher starts
/// with `ETCD_ENDPOINTS`. Proven from the controller's side: RabbitMQ lists nova-compute's and
/// neutron-openvswitch-agent's AMQP connections from the VM's address as the user etcd names; the cell database
/// gets a `services` row for the guest's nova-compute (it registered through the conductor) and a `compute_nodes`
/// row whose hypervisor type (QEMU), vCPUs and memory are the guest's as its libvirtd reports them (nova-compute's
/// libvirt driver talked to the guest's libvirtd); placement gets the node as a resource provider. Over SSH: the
/// services run with the files cloud-init wrote (byte for byte what etcd rendered). SIGTERM then powers the node
/// off: exit status 0 and the container restored.
@Suite(.serialized, .enabled(if: isRoot, "needs root: makes network namespaces and macvtaps, and runs QEMU, etcd, RabbitMQ and nova"))
struct ComputeNodeEndToEndTests {
    static var computeImage: String { repositoryRoot.appendingPathComponent("image/out/compute-node.qcow2").path }
    static let rabbitBin = "/usr/lib/rabbitmq/bin"
    static let vmAddress = "10.88.0.2", nodeAddress = "10.88.0.1"

    /// RabbitMQ in the peer namespace: its own node name, data, logs, cookie (HOME) and epmd, all under the
    /// test's directory; ports are the namespace's own, so nothing on the machine can clash with it.
    final class RabbitMQ: @unchecked Sendable {  // only used from the test's own thread
        let namespace: TestNamespace
        let directory: String
        let node: String
        let environment: [String: String]
        let epmd: ConsoleProcess
        let server: ConsoleProcess

        init(in namespace: TestNamespace, directory: String) throws {
            self.namespace = namespace
            self.directory = directory
            node = "klcompute-\(uniqueSuffix())@localhost"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for file in ["env.conf", "rabbitmq.conf"] { try "".write(toFile: "\(directory)/\(file)", atomically: true, encoding: .utf8) }
            environment = [
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": directory, "LANG": "C.UTF-8",
                "RABBITMQ_NODENAME": node, "RABBITMQ_NODE_PORT": "5672",
                "RABBITMQ_MNESIA_BASE": "\(directory)/mnesia", "RABBITMQ_LOG_BASE": "\(directory)/log", "RABBITMQ_LOGS": "-",
                "RABBITMQ_CONF_ENV_FILE": "\(directory)/env.conf", "RABBITMQ_CONFIG_FILE": "\(directory)/rabbitmq.conf",
                "RABBITMQ_ADVANCED_CONFIG_FILE": "\(directory)/advanced.config",
                "RABBITMQ_ENABLED_PLUGINS_FILE": "\(directory)/enabled_plugins", "RABBITMQ_PID_FILE": "\(directory)/beam.pid",
                "ERL_EPMD_ADDRESS": "127.0.0.1",
            ]
            // epmd in the foreground, ours: the Erlang VM would otherwise start a daemon that outlives the test.
            epmd = try ConsoleProcess(["/usr/sbin/ip", "netns", "exec", namespace.name, "/usr/bin/epmd"], environment: environment)
            do {
                server = try ConsoleProcess(["/usr/sbin/ip", "netns", "exec", namespace.name, "\(Self.bin)/rabbitmq-server"], environment: environment)
            } catch {
                epmd.stop()
                throw error
            }
        }

        static var bin: String { ComputeNodeEndToEndTests.rabbitBin }

        @discardableResult
        func ctl(_ arguments: [String], timeout: TimeInterval = 120, check: Bool = true) throws -> ProcessResult {
            try run(["/usr/sbin/ip", "netns", "exec", namespace.name, "\(Self.bin)/rabbitmqctl", "-n", node] + arguments,
                    environment: environment, check: check, timeout: timeout)
        }

        /// Waits until the node has booted; fails with the server's last lines when it did not in time or exited.
        func waitUntilRunning(timeout: TimeInterval) throws {
            let deadline = Date().addingTimeInterval(timeout)
            var last = ""
            while Date() < deadline {
                let result = try ctl(["await_startup", "--timeout", "60"], timeout: 90, check: false)
                if result.status == 0 { return }
                last = result.stderr
                if server.waitForExit(timeout: 2) != nil { break }
            }
            throw EndToEndTests.Failure("RabbitMQ did not start: \(last.suffix(400))\nserver:\n\(server.lines.suffix(20).joined(separator: "\n"))")
        }

        /// Stops the node (rabbitmqctl stop, bounded), then kills whatever of ours is left: the Erlang VM by the
        /// pid in our pid file, the start script, epmd.
        func stop() {
            // The start script runs the Erlang VM as its child (the pid file appears only once the node booted).
            let children = (try? String(contentsOfFile: "/proc/\(server.pid)/task/\(server.pid)/children", encoding: .utf8)) ?? ""
            _ = try? ctl(["stop"], timeout: 60, check: false)
            let pidFile = (try? String(contentsOfFile: "\(directory)/beam.pid", encoding: .utf8)) ?? ""
            for pid in Set((children + " " + pidFile).split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }) where pid > 1 {
                kill(pid, SIGKILL)
            }
            server.stop()
            epmd.stop()
        }
    }

    /// The controller nova-compute needs to start (Debian 12's nova, Zed): nova-conductor, which answers its first
    /// RPC and writes its `services` and `compute_nodes` rows, and placement, which its resource tracker reports
    /// to (Zed's nova-compute stops at start without a working placement client: it reads placement's version
    /// document when its manager is made). Both run from Debian's Python packages (python3-nova,
    /// python3-placement: the packages of the services would bring dbconfig-common's questions and system
    /// services) with the packaged entry points, in the peer namespace, on sqlite files in the test's directory.
    final class Controller: @unchecked Sendable {  // only used from the test's own thread
        static let python = "/usr/bin/python3"
        /// What Debian's /usr/bin/nova-manage and /usr/bin/nova-conductor run (python3-nova's entry points).
        static let novaManage = "import sys; from nova.cmd.manage import main; sys.argv[0] = 'nova-manage'; sys.exit(main())"
        static let novaConductor = "import sys; from nova.cmd.conductor import main; sys.argv[0] = 'nova-conductor'; sys.exit(main())"
        /// placement's WSGI application (python3-placement) served by the standard library's WSGI server.
        static let placementServer = """
            import sys
            from wsgiref.simple_server import make_server
            from placement import wsgi
            server = make_server(sys.argv[1], int(sys.argv[2]), wsgi.init_application())
            print("placement: serving", flush=True)
            server.serve_forever()
            """
        let namespace: TestNamespace
        let directory: String
        let environment: [String: String]
        private(set) var placement: ConsoleProcess?
        private(set) var conductor: ConsoleProcess?

        init(in namespace: TestNamespace, directory: String) throws {
            self.namespace = namespace
            self.directory = directory
            environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": directory, "LANG": "C.UTF-8", "OS_PLACEMENT_CONFIG_DIR": directory]
            try FileManager.default.createDirectory(atPath: "\(directory)/lock", withIntermediateDirectories: true)
        }

        /// placement on ADDRESS:PORT with its own sqlite database (made at start), keystone off (`noauth2`: the
        /// token `admin` is an administrator); returns once it serves.
        func startPlacement(address: String, port: Int, timeout: TimeInterval) throws {
            try """
                [DEFAULT]
                log_file = \(directory)/placement.log
                [api]
                auth_strategy = noauth2
                [placement_database]
                connection = sqlite:///\(directory)/placement.sqlite
                sync_on_startup = true

                """.write(toFile: "\(directory)/placement.conf", atomically: true, encoding: .utf8)
            let server = try ConsoleProcess(["/usr/sbin/ip", "netns", "exec", namespace.name, Self.python, "-c", Self.placementServer, address, String(port)],
                                            environment: environment)
            placement = server
            guard server.waitFor("placement: serving", timeout: timeout) != nil else {
                throw EndToEndTests.Failure("placement did not start: \(server.stderrLines.suffix(20).joined(separator: "\n"))")
            }
        }

        /// `nova-manage --config-file CONFIG ARGUMENTS…`, bounded.
        @discardableResult
        func manage(_ arguments: [String], config: String) throws -> ProcessResult {
            try run(["/usr/sbin/ip", "netns", "exec", namespace.name, Self.python, "-c", Self.novaManage, "--config-file", config] + arguments,
                    environment: environment, timeout: 300)
        }

        /// nova-conductor with CONFIG (its log goes where the configuration's `log_file` says).
        func startConductor(config: String) throws {
            conductor = try ConsoleProcess(["/usr/sbin/ip", "netns", "exec", namespace.name, Self.python, "-c", Self.novaConductor, "--config-file", config],
                                           environment: environment)
        }

        /// The rows QUERY selects from the sqlite DATABASE (a file in the directory), fields split at tabs.
        func rows(_ database: String, _ query: String) throws -> [[String]] {
            try run(["sqlite3", "-separator", "\t", "\(directory)/\(database)", query], timeout: 60).stdout
                .split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        }

        /// Kills both services (each is one process: the conductor runs one worker, the WSGI server none).
        func stop() {
            conductor?.stop()
            placement?.stop()
        }
    }

    @Test func novaComputeStartsFromEtcdAndRegistersWithTheController() throws {
        guard FileManager.default.fileExists(atPath: Self.computeImage) else {
            throw EndToEndTests.Failure("no compute image at \(Self.computeImage): run image/compute/build.sh (make test does it first)")
        }
        guard FileManager.default.isExecutableFile(atPath: "\(Self.rabbitBin)/rabbitmq-server") else {
            throw EndToEndTests.Failure("no RabbitMQ at \(Self.rabbitBin): install Debian's rabbitmq-server (scripts/packages-test.txt)")
        }
        guard FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/nova/cmd/conductor.py"),
              FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/placement/wsgi.py") else {
            throw EndToEndTests.Failure("no nova or placement: install Debian's python3-nova and python3-placement (scripts/packages-test.txt)")
        }
        let started = Date()
        let fixture = try ContainerFixture([.init(name: "eth0", addresses: ["\(Self.vmAddress)/24"], peerAddress: "\(Self.nodeAddress)/24", defaultRoute: true)])
        defer { fixture.destroy() }
        let before = try fixture.state()
        let directory = fixture.directory.path

        // etcd on the node side.
        let etcd = try ConsoleProcess([
            "/usr/sbin/ip", "netns", "exec", fixture.peer.name, "/usr/bin/etcd", "--name", "kl-compute", "--data-dir", "\(directory)/etcd",
            "--listen-client-urls", "http://\(Self.nodeAddress):2379", "--advertise-client-urls", "http://\(Self.nodeAddress):2379",
            "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
            "--initial-cluster", "kl-compute=http://127.0.0.1:2380", "--log-level", "warn",
        ], environment: ["PATH": "/usr/bin:/bin"])
        defer { etcd.stop() }
        let rabbit = try RabbitMQ(in: fixture.peer, directory: "\(directory)/rabbitmq")
        defer { rabbit.stop() }

        // The deployment's data (a copy of ../shared/reference in the config agent's fixtures), then the test's
        // own values, read last (files are read in path order): RabbitMQ and the addresses on this network, and
        // what the reference predates or a test cannot have: placement (Zed's nova-compute needs it; here without
        // keystone, so a fixed endpoint and token instead of the password a deployment gives) and the controller's
        // databases (sqlite files in the test's directory instead of MySQL).
        let controllerDirectory = "\(directory)/controller"
        let password = "rmq" + uniqueSuffix().filter(\.isLetter) + String(UInt32.random(in: 100_000...999_999))
        let data = "\(directory)/config"
        let reference = repositoryRoot.appendingPathComponent("Tests/ConfigAgentTests/Fixtures/reference").path
        for part in ["general", "nova"] {
            try FileManager.default.createDirectory(atPath: "\(data)/\(part)", withIntermediateDirectories: true)
            for file in try FileManager.default.contentsOfDirectory(atPath: "\(reference)/\(part)") {
                try FileManager.default.copyItem(atPath: "\(reference)/\(part)/\(file)", toPath: "\(data)/\(part)/\(file)")
            }
        }
        try FileManager.default.createDirectory(atPath: "\(data)/zz-test", withIntermediateDirectories: true)
        try """
            general/RABBIT_HOSTNAME=\(Self.nodeAddress)
            general/RABBIT_PASSWORD=\(password)
            general/SELECTED_NETWORK=10.88.0.0/24
            compute/nova/nova.conf/DEFAULT/my_ip=$MY_IP
            compute/neutron/openvswitch_agent.ini/ovs/local_ip=$MY_IP
            compute/nova/nova.conf/DEFAULT/transport_url=rabbit://$RABBIT_USERID:$RABBIT_PASSWORD@$RABBIT_HOSTNAME:5672/
            compute/neutron/neutron.conf/DEFAULT/transport_url=rabbit://$RABBIT_USERID:$RABBIT_PASSWORD@$RABBIT_HOSTNAME:5672/
            compute/nova/nova.conf/libvirt/virt_type=qemu
            compute/nova/nova.conf/libvirt/cpu_mode=none
            compute/nova/nova.conf/libvirt/connection_uri=qemu:///system
            general/PLACEMENT_HOSTNAME=\(Self.nodeAddress)
            compute/nova/nova.conf/placement/auth_type=admin_token
            compute/nova/nova.conf/placement/endpoint=http://$PLACEMENT_HOSTNAME:8778
            compute/nova/nova.conf/placement/token=admin
            controller/nova/nova.conf/DEFAULT/transport_url=rabbit://$RABBIT_USERID:$RABBIT_PASSWORD@$RABBIT_HOSTNAME:5672/
            controller/nova/nova.conf/database/connection=sqlite:///\(controllerDirectory)/nova.sqlite
            controller/nova/nova.conf/api_database/connection=sqlite:///\(controllerDirectory)/nova_api.sqlite
            controller/nova/nova.conf/DEFAULT/state_path=\(controllerDirectory)
            controller/nova/nova.conf/DEFAULT/log_file=\(controllerDirectory)/nova.log
            controller/nova/nova.conf/DEFAULT/debug=False
            controller/nova/nova.conf/oslo_concurrency/lock_path=\(controllerDirectory)/lock
            controller/nova/nova.conf/conductor/workers=1
            controller/nova/nova.conf/placement/auth_type=admin_token
            controller/nova/nova.conf/placement/endpoint=http://$PLACEMENT_HOSTNAME:8778
            controller/nova/nova.conf/placement/token=admin

            """.write(toFile: "\(data)/zz-test/overrides", atomically: true, encoding: .utf8)
        let agent = productsDirectory.appendingPathComponent("kvm-launch-config").path
        let etcdEnvironment = ["PATH": "/usr/bin:/bin", "ETCD_ENDPOINTS": "http://\(Self.nodeAddress):2379", "ETCD_TIMEOUT": "5"]
        var loaded: ProcessResult?
        for _ in 0..<30 {
            loaded = try fixture.peer.exec([agent, "load", "--legacy", data], environment: etcdEnvironment, check: false)
            if loaded?.status == 0 { break }
            Thread.sleep(forTimeInterval: 1)
        }
        try #require(loaded?.status == 0, "config load into etcd: \(loaded?.stderr ?? "")")

        // RabbitMQ up (its node answers only once registered with epmd: ask again until then), with the user etcd
        // names (general/RABBIT_USERID) and the test's password.
        try rabbit.waitUntilRunning(timeout: 300)
        try rabbit.ctl(["add_user", "rabbit", password])
        try rabbit.ctl(["set_permissions", "-p", "/", "rabbit", ".*", ".*", ".*"])

        // The pod's init step: the files rendered from etcd as the seed's user data, MY_IP the pod's address.
        let userData = "\(directory)/user-data"
        let rendered = try fixture.container.exec([
            agent, "user-data", "--output", userData,
            "compute/nova/nova.conf=/etc/nova/etcd/nova.conf",
            "compute/neutron/neutron.conf=/etc/neutron/etcd/neutron.conf",
            "compute/neutron/openvswitch_agent.ini=/etc/neutron/etcd/openvswitch_agent.ini",
        ], environment: etcdEnvironment.merging(["MY_IP": Self.vmAddress]) { _, new in new })
        #expect(!rendered.stdout.contains(password), "the agent prints sizes, never the files")
        let files = try Self.writeFiles(userData)
        let novaConf = try #require(files["/etc/nova/etcd/nova.conf"])
        #expect(novaConf.contains("my_ip = \(Self.vmAddress)") || novaConf.contains("my_ip=\(Self.vmAddress)"))
        #expect(novaConf.contains("rabbit://rabbit:\(password)@\(Self.nodeAddress):5672/"))

        // The launcher, as the pod's `vm` container: general/ from etcd, the user data and an SSH key for the test.
        try FileManager.default.copyItem(atPath: Self.computeImage, toPath: "\(directory)/compute-node.qcow2")
        try run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "compute-node.qcow2", "-F", "qcow2", "\(directory)/disk.qcow2"])
        try run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kl-compute-test", "-f", "\(directory)/id"])
        let publicKey = try String(contentsOfFile: "\(directory)/id.pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let vm = try EndToEndTests.VMRun(fixture, environment: [
            "AUTO_ATTACH": "yes", "VM_MEMORY": "2048M", "VM_CPUS": "2", "VM_HOSTNAME": "compute-test", "VM_SHUTDOWN_TIMEOUT": "240",
            "CLOUD_INIT_USER_DATA": userData, "SSH_AUTHORIZED_KEYS": publicKey,
            "ETCD_ENDPOINTS": "http://\(Self.nodeAddress):2379", "ETCD_TIMEOUT": "5",
        ], image: "\(directory)/disk.qcow2")
        defer { vm.stop() }
        let launched = Date()

        // The controller, while the node boots: placement, then the operator's database steps with the conductor's
        // nova.conf rendered from the same etcd (the same RabbitMQ user and password as the node's), then the
        // conductor. nova-compute asks for the conductor again every minute until it answers.
        let controller = try Controller(in: fixture.peer, directory: controllerDirectory)
        defer { controller.stop() }
        try controller.startPlacement(address: Self.nodeAddress, port: 8778, timeout: 180)
        try fixture.peer.exec([agent, "render", "controller/nova/nova.conf", "--into", controllerDirectory],
                              environment: etcdEnvironment.merging(["HOSTNAME": "nova-controller"]) { _, new in new })
        let controllerConf = "\(controllerDirectory)/nova.conf"
        #expect(try String(contentsOfFile: controllerConf, encoding: .utf8).contains("rabbit://rabbit:\(password)@\(Self.nodeAddress):5672/"),
                "the conductor's transport_url is the node's")
        try controller.manage(["api_db", "sync"], config: controllerConf)
        try controller.manage(["cell_v2", "map_cell0", "--database_connection", "sqlite:///\(controllerDirectory)/nova_cell0.sqlite"], config: controllerConf)
        try controller.manage(["cell_v2", "create_cell", "--name", "cell1"], config: controllerConf)
        try controller.manage(["db", "sync"], config: controllerConf)
        try controller.startConductor(config: controllerConf)
        let controllerReady = Date().timeIntervalSince(launched)

        // Seen from RabbitMQ: nova-compute's and the OVS agent's connections, from the VM, as etcd's user.
        var connections: [String] = []
        let deadline = Date().addingTimeInterval(1200)
        while Date() < deadline {
            let listed = try rabbit.ctl(["list_connections", "--no-table-headers", "--silent", "user", "peer_host", "client_properties"], check: false)
            connections = listed.stdout.split(separator: "\n").map(String.init)
            if connections.contains(where: { $0.contains("nova-compute") }) && connections.contains(where: { $0.contains("neutron-openvswitch-agent") }) { break }
            if vm.process.waitForExit(timeout: 10) != nil { break }
        }
        let connected = Date().timeIntervalSince(launched)
        let nova = connections.first { $0.contains("nova-compute") }
        let neutron = connections.first { $0.contains("neutron-openvswitch-agent") }
        #expect(nova?.hasPrefix("rabbit\t\(Self.vmAddress)\t") == true, "nova-compute's AMQP connection, user rabbit from \(Self.vmAddress): \(connections)")
        #expect(neutron?.hasPrefix("rabbit\t\(Self.vmAddress)\t") == true, "neutron-openvswitch-agent's AMQP connection: \(connections)")
        print("ComputeNodeEndToEndTests: container start -> controller ready: \(Int(controllerReady)) s, both AMQP connections open: \(Int(connected)) s")
        if nova == nil || neutron == nil {
            Issue.record("console:\n\(vm.process.lines.suffix(60).joined(separator: "\n"))\nstderr:\n\(vm.process.stderrLines.suffix(20).joined(separator: "\n"))")
        }
        #expect(!vm.process.stderrLines.contains { $0.contains(password) }, "no secret in kvm-launch's log")

        // Seen from the controller: the node registered through the conductor (its services row in the cell
        // database), its libvirt driver described the guest's hypervisor (the compute_nodes row), and the resource
        // tracker reported it to placement (a resource provider with the node's VCPU inventory, class 0).
        // nova-compute registers within a minute or two of its first connection (one more minute when it asked
        // before the conductor listened): five minutes bound the wait when it never does.
        var services: [[String]] = [], nodes: [[String]] = [], providers: [[String]] = []
        let registrationDeadline = min(deadline, Date().addingTimeInterval(300))
        while nova != nil && Date() < registrationDeadline {
            services = try controller.rows("nova.sqlite", "SELECT host, topic FROM services WHERE binary = 'nova-compute' AND deleted = 0")
            nodes = try controller.rows("nova.sqlite",
                                        "SELECT host, hypervisor_type, vcpus, memory_mb, hypervisor_hostname FROM compute_nodes WHERE deleted = 0")
            providers = try controller.rows("placement.sqlite", """
                SELECT r.name, i.total FROM resource_providers r JOIN inventories i ON i.resource_provider_id = r.id \
                WHERE i.resource_class_id = 0
                """)
            if !services.isEmpty && !nodes.isEmpty && !providers.isEmpty { break }
            if vm.process.waitForExit(timeout: 5) != nil { break }
        }
        let registered = Date().timeIntervalSince(launched)
        print("ComputeNodeEndToEndTests: container start -> compute node registered: \(Int(registered)) s (services \(services), compute_nodes \(nodes))")
        #expect(services == [["compute-test", "compute"]], "nova-compute of the guest registered through the conductor: \(services)")
        let conductorLog = Self.tail("\(controllerDirectory)/nova.log")
        let node = try #require(nodes.first, "a compute_nodes row: nova-compute's libvirt driver reached libvirtd\nconductor:\n\(conductorLog)")
        #expect(nodes.count == 1 && node.count == 5 && node[0] == "compute-test" && node[1] == "QEMU", "one node, the guest's, on libvirt's QEMU driver: \(nodes)")
        let nodeVCPUs = node.count == 5 ? Int(node[2]) : nil, nodeMemory = node.count == 5 ? Int(node[3]) : nil
        #expect(nodeVCPUs == 2, "vCPUs as libvirtd in the guest counts them (VM_CPUS=2): \(node)")
        #expect(providers.count == 1 && providers.first == [node.count == 5 ? node[4] : "?", "2"],
                "placement has the node as a resource provider with its 2 vCPUs: \(providers)")

        // Inside the guest: the files cloud-init wrote are etcd's, the services run with them, and the memory the
        // controller recorded is the guest's own (MemTotal, as libvirtd reports it: nothing else knows it).
        if nova != nil {
            let ssh = try fixture.peer.exec([
                "timeout", "120", "ssh", "-i", "\(directory)/id", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "ConnectTimeout=60", "-o", "BatchMode=yes", "debian@\(Self.vmAddress)",
                "sudo sha256sum /etc/nova/etcd/nova.conf /etc/neutron/etcd/neutron.conf /etc/neutron/etcd/openvswitch_agent.ini;"
                    + " sudo stat -c '%U:%G %a %n' /etc/nova/etcd/nova.conf; systemctl is-active neutron-openvswitch-agent nova-compute;"
                    + " pgrep -a -f '[-]-config-file=/etc/(nova|neutron)/etcd/';"
                    + " awk '$1 == \"MemTotal:\" { print \"memory-mib \" int($2 / 1024) }' /proc/meminfo",
            ], check: false)
            #expect(ssh.status == 0, "ssh into the compute node: \(ssh.stderr)\n\(ssh.stdout)")
            for (path, content) in files {
                let digest = try Self.sha256(content)
                #expect(ssh.stdout.contains("\(digest)  \(path)"), "\(path) in the guest is what etcd rendered")
            }
            #expect(ssh.stdout.contains("root:nova 640 /etc/nova/etcd/nova.conf"))
            // nova-compute tells systemd it is ready once it registered with the conductor.
            #expect(ssh.stdout.contains("\nactive\nactive\n"), "the agent and nova-compute run: \(ssh.stdout)")
            #expect(ssh.stdout.contains("--config-file=/etc/nova/etcd/nova.conf"), "nova-compute reads etcd's nova.conf")
            #expect(ssh.stdout.contains("--config-file=/etc/neutron/etcd/openvswitch_agent.ini"), "the agent reads etcd's files")
            let guestMemory = ssh.stdout.split(separator: "\n").first { $0.hasPrefix("memory-mib ") }.flatMap { Int($0.dropFirst("memory-mib ".count)) }
            #expect(guestMemory != nil && nodeMemory != nil && abs(guestMemory! - nodeMemory!) <= 8,
                    "memory_mb \(nodeMemory ?? -1) is the guest's MemTotal \(guestMemory ?? -1) MiB (the test host has \(ProcessInfo.processInfo.physicalMemory >> 20))")
        }

        vm.process.signal(SIGTERM)
        let status = vm.process.waitForExit(timeout: 420)
        #expect(status == 0, "graceful stop: \(vm.process.stderrLines.suffix(5))")
        #expect(try fixture.state() == before, "the container is restored")
        print("ComputeNodeEndToEndTests: whole test \(Int(Date().timeIntervalSince(started))) s")
    }

    /// The last lines of a log file (for a failure message).
    static func tail(_ path: String, lines: Int = 30) -> String {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "(no \(path))").split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// The `write_files` of a `#cloud-config` JSON document: path → content.
    static func writeFiles(_ path: String) throws -> [String: String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        guard text.hasPrefix("#cloud-config\n") else { throw EndToEndTests.Failure("\(path) is not #cloud-config") }
        let json = try JSONSerialization.jsonObject(with: Data(text.dropFirst("#cloud-config\n".count).utf8))
        let list = ((json as? [String: Any])?["write_files"] as? [[String: String]]) ?? []
        return Dictionary(list.compactMap { file in file["path"].flatMap { path in file["content"].map { (path, $0) } } }) { first, _ in first }
    }

    static func sha256(_ text: String) throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kl-compute-sha-\(uniqueSuffix())").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return String(try run(["sha256sum", file]).stdout.prefix(64))
    }
}
