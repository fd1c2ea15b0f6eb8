import Foundation
import Testing

@testable import ConfigAgent
import TestSupport

/// `kvm-launch config user-data`: files rendered from etcd carried as cloud-init `write_files`.
@Suite("config user-data")
struct UserDataTests {
    @Test("ROLE/SERVICE/FILE=GUESTPATH: bad arguments are refused with the reason")
    func targets() throws {
        let target = try CloudConfigFiles.Target(argument: "compute/nova/nova.conf=/etc/nova/etcd/nova.conf")
        #expect(target.file.service == "nova" && target.guestPath == "/etc/nova/etcd/nova.conf")
        for (argument, reason) in [
            ("compute/nova/nova.conf", "give the guest path too"),
            ("compute/nova/nova.conf=etc/nova.conf", "must be absolute"),
            ("compute/nova/nova.conf=/etc/../shadow", "must be absolute"),
            ("compute/nova/nova.conf=/etc//nova.conf", "must be absolute"),
            ("compute/nova/nova.conf=/", "must be absolute"),
            ("compute/nova/nova.conf=/etc/nova\n.conf", "control characters"),
            ("worker/nova/nova.conf=/etc/nova.conf", "worker/nova/nova.conf="),
        ] {
            let error = #expect(throws: CloudConfigFilesError.self) { try CloudConfigFiles.Target(argument: argument) }
            #expect(error.map { "\($0)".contains(reason) } == true, "\(argument): \(String(describing: error))")
        }
        let twice = #expect(throws: CloudConfigFilesError.self) {
            try CloudConfigFiles(files: [.init(path: "/a", content: "", owner: "root:a"), .init(path: "/a", content: "", owner: "root:b")])
        }
        #expect(twice == .duplicateGuestPath("/a"))
    }

    @Test("the user data is #cloud-config whose write_files hold each file's exact text, owner and mode")
    func document() throws {
        let text = "[DEFAULT]\nmy_ip = 10.0.0.2\npassword = a\"b\\c: d # e\n\tindented\n"
        let document = try CloudConfigFiles(files: [.init(path: "/etc/nova/etcd/nova.conf", content: text, owner: "root:nova")])
        let userData = document.userData
        #expect(userData.hasPrefix("#cloud-config\n"))
        let json = try JSONSerialization.jsonObject(with: Data(userData.dropFirst("#cloud-config\n".count).utf8))
        let files = (json as? [String: Any])?["write_files"] as? [[String: String]]
        #expect(files == [["path": "/etc/nova/etcd/nova.conf", "content": text, "owner": "root:nova", "permissions": "0640"]])
    }

    @Test("from a real etcd: the reference's compute files, $HOSTNAME from the environment, secrets only in the file")
    func fromEtcd() async throws {
        try await EtcdServer.with { server in
            let etcd = ["--endpoints", server.endpoint.url, "--prefix", "/userdata"]
            let temporary = try TemporaryDirectory()
            defer { temporary.remove() }
            let directory = temporary.path
            _ = try await runConfigCommand(["load", "--legacy"] + etcd + [fixture("reference/nova"), fixture("reference/general")])
            let output = directory + "/user-data"
            let run = try await runConfigCommand(
                ["user-data"] + etcd + ["--output", output,
                                        "compute/nova/nova.conf=/etc/nova/etcd/nova.conf",
                                        "compute/neutron/openvswitch_agent.ini=/etc/neutron/etcd/openvswitch_agent.ini"],
                environment: ["HOSTNAME": "10.9.8.7"])
            #expect(run.out.lines.last?.hasPrefix("user data -> \(output): 2 files") == true, "\(run.out.lines)")
            #expect(!run.out.text.contains("nova_password"))
            var info = stat()
            #expect(stat(output, &info) == 0 && info.st_mode & 0o777 == 0o600)

            let userData = try readFile(output)
            let json = try JSONSerialization.jsonObject(with: Data(userData.dropFirst("#cloud-config\n".count).utf8))
            let files = try #require((json as? [String: Any])?["write_files"] as? [[String: String]])
            #expect(files.map { $0["path"] } == ["/etc/nova/etcd/nova.conf", "/etc/neutron/etcd/openvswitch_agent.ini"])
            #expect(files.map { $0["owner"] } == ["root:nova", "root:neutron"])
            let nova = INIDocument(try #require(files[0]["content"]))
            #expect(nova.value(section: "DEFAULT", key: "my_ip") == "10.9.8.7")
            #expect(nova.value(section: "keystone_authtoken", key: "password") == "nova_password")
            #expect(nova.value(section: "libvirt", key: "connection_uri") == "qemu+tcp://localhost/system")
            #expect(INIDocument(try #require(files[1]["content"])).value(section: "ovs", key: "local_ip") == "10.9.8.7")

            // A file etcd does not have: an error, and the earlier output stays as it was.
            await #expect(throws: RenderError.self) {
                try await runConfigCommand(["user-data"] + etcd + ["--output", output, "compute/nova/missing.conf=/etc/x"])
            }
            #expect(try readFile(output) == userData)
        }
    }
}
