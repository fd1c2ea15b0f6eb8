import CloudInitSeed
import Foundation
import NetworkTypes
import TestSupport
import Testing
import Yams

/// A Calico-shaped NIC: a /32 whose gateway is reachable only through a link-scope route.
private let calicoNIC = NetworkConfig.Interface(
    id: "eth0", mac: MACAddress("52:54:00:12:34:56")!, mtu: 1440,
    addresses: ["10.244.1.7/32", "fd00:10:244::7/128"],
    routes: [
        .init(destination: "169.254.1.1/32"),
        .init(destination: "0.0.0.0/0", gateway: "169.254.1.1", onLink: true),
        .init(destination: "::/0", gateway: "fe80::ecee:eeff:feee:eeee", onLink: true),
    ],
    nameServers: ["10.96.0.10"], searchDomains: ["default.svc.cluster.local", "svc.cluster.local"])

private let providerNIC = NetworkConfig.Interface(id: "net1", mac: MACAddress("52:54:00:aa:bb:cc")!, mtu: 9000,
                                                  addresses: ["192.0.2.10/24"],
                                                  routes: [.init(destination: "198.51.100.0/24", gateway: "192.0.2.1", metric: 50)])

private let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJx0test0key0material0only0for0tests0000 ops@example"

@Suite("NoCloud seed contents")
struct SeedContentTests {
    @Test func networkConfigMatchesEveryNICByMACWithAddressesRoutesDNSAndMTU() throws {
        let yaml = try NetworkConfig(interfaces: [calicoNIC, providerNIC]).yaml()
        let document = try #require(try Yams.load(yaml: yaml) as? [String: Any])
        #expect(document["version"] as? Int == 2)
        let ethernets = try #require(document["ethernets"] as? [String: [String: Any]])
        let eth0 = try #require(ethernets["eth0"])
        #expect((eth0["match"] as? [String: String])?["macaddress"] == "52:54:00:12:34:56")
        #expect(eth0["mtu"] as? Int == 1440)
        #expect(eth0["dhcp4"] as? Bool == false)
        #expect(eth0["addresses"] as? [String] == ["10.244.1.7/32", "fd00:10:244::7/128"])
        let routes = try #require(eth0["routes"] as? [[String: Any]])
        #expect(routes.count == 3)
        #expect(routes[0]["to"] as? String == "169.254.1.1/32" && routes[0]["scope"] as? String == "link" && routes[0]["via"] == nil)
        #expect(routes[1]["via"] as? String == "169.254.1.1" && routes[1]["on-link"] as? Bool == true)
        let servers = try #require(eth0["nameservers"] as? [String: [String]])
        #expect(servers["addresses"] == ["10.96.0.10"])
        #expect(servers["search"] == ["default.svc.cluster.local", "svc.cluster.local"])
        let net1 = try #require(ethernets["net1"])
        #expect(net1["mtu"] as? Int == 9000)
        #expect(net1["nameservers"] == nil)
        #expect((net1["routes"] as? [[String: Any]])?.first?["metric"] as? Int == 50)
    }

    /// Issue 14 item 1: the VM's IPv6 addresses and default route in network-config, for each gateway kind.
    @Test func ipv6AddressesAndTheDefaultRouteGoToNetworkConfig() throws {
        let mac = MACAddress("52:54:00:12:34:56")!
        // Docker --ipv6, dual stack: the gateway's learned link-local address is the next hop.
        var docker = NetworkConfig.Interface(id: "eth0", mac: mac, mtu: 1500, addresses: ["172.18.0.2/16"],
                                             routes: [.init(destination: "0.0.0.0/0", gateway: "172.18.0.1")],
                                             nameServers: ["172.18.0.53"], searchDomains: ["example.test"])
        docker.addIPv6(addresses: [IPv6Interface("fd00:d0c::2/64")!, IPv6Interface("2001:db8:d0c::2/64")!],
                       router: IPv6Address("fe80::42:acff:fe12:1"), gateway: IPv6Address("fd00:d0c::1"),
                       nameServers: [IPv6Address("fd00:d0c::53")!], searchDomains: ["example.test", "v6.example.test"])
        // Its link-local address unknown: the global gateway itself, on the link through the prefix.
        var unlearned = NetworkConfig.Interface(id: "eth1", mac: MACAddress("52:54:00:12:34:57")!)
        unlearned.addIPv6(addresses: [IPv6Interface("fd00:d0d::2/64")!], router: nil, gateway: IPv6Address("fd00:d0d::1"),
                          nameServers: [], searchDomains: [])
        // A /128 (Calico-like) with a global gateway no prefix holds: on-link.
        var host = NetworkConfig.Interface(id: "eth2", mac: MACAddress("52:54:00:12:34:58")!)
        host.addIPv6(addresses: [IPv6Interface("fd00:ca1::7/128")!], router: nil, gateway: IPv6Address("fd00:ca1::1"),
                     nameServers: [], searchDomains: [])
        // No gateway at all: addresses only.
        var isolated = NetworkConfig.Interface(id: "eth3", mac: MACAddress("52:54:00:12:34:59")!)
        isolated.addIPv6(addresses: [IPv6Interface("fd00:150::2/64")!], router: nil, gateway: nil, nameServers: [], searchDomains: [])

        let yaml = try NetworkConfig(interfaces: [docker, unlearned, host, isolated]).yaml()
        let ethernets = try #require((try Yams.load(yaml: yaml) as? [String: Any])?["ethernets"] as? [String: [String: Any]])
        let eth0 = try #require(ethernets["eth0"])
        #expect(eth0["addresses"] as? [String] == ["172.18.0.2/16", "fd00:d0c::2/64", "2001:db8:d0c::2/64"])
        let routes = try #require(eth0["routes"] as? [[String: Any]])
        #expect(routes.count == 2)
        #expect(routes[1]["to"] as? String == "::/0" && routes[1]["via"] as? String == "fe80::42:acff:fe12:1")
        #expect(routes[1]["on-link"] == nil && routes[1]["scope"] == nil)
        let servers = try #require(eth0["nameservers"] as? [String: [String]])
        #expect(servers["addresses"] == ["172.18.0.53", "fd00:d0c::53"])
        #expect(servers["search"] == ["example.test", "v6.example.test"], "search domains without repeats")
        #expect(eth0["dhcp6"] as? Bool == false && eth0["accept-ra"] as? Bool == false, "static: the guest needs no RA or DHCPv6 client")

        let eth1Routes = try #require(ethernets["eth1"]?["routes"] as? [[String: Any]])
        #expect(eth1Routes.count == 1 && eth1Routes[0]["to"] as? String == "::/0" && eth1Routes[0]["via"] as? String == "fd00:d0d::1")
        #expect(eth1Routes[0]["on-link"] == nil, "the /64 holds the gateway")
        #expect(ethernets["eth1"]?["addresses"] as? [String] == ["fd00:d0d::2/64"], "an IPv6-only NIC")
        let eth2Routes = try #require(ethernets["eth2"]?["routes"] as? [[String: Any]])
        #expect(eth2Routes[0]["via"] as? String == "fd00:ca1::1" && eth2Routes[0]["on-link"] as? Bool == true)
        #expect(ethernets["eth3"]?["routes"] == nil && ethernets["eth3"]?["addresses"] as? [String] == ["fd00:150::2/64"])
    }

    @Test func keysAreMergedIntoACloudConfigWithoutLosingItsSettings() throws {
        let text = "#cloud-config\npackage_update: false\nssh_authorized_keys:\n  - ssh-rsa AAAAB3existing old@host\nruncmd:\n  - [touch, /tmp/x]\n"
        let rendered = try UserData(text: text, sshAuthorizedKeys: [key, "ssh-rsa AAAAB3existing old@host"]).render()
        #expect(rendered.hasPrefix("#cloud-config\n"))
        let document = try #require(try Yams.load(yaml: rendered) as? [String: Any])
        #expect(document["ssh_authorized_keys"] as? [String] == ["ssh-rsa AAAAB3existing old@host", key])
        #expect(document["package_update"] as? Bool == false)
        #expect((document["runcmd"] as? [[String]]) == [["touch", "/tmp/x"]])
    }

    @Test func aScriptWithKeysBecomesTwoMIMEParts() throws {
        let script = "#!/bin/sh\necho hello > /run/hello\n"
        let rendered = try UserData(text: script, sshAuthorizedKeys: [key]).render()
        #expect(rendered.hasPrefix("Content-Type: multipart/mixed; boundary="))
        #expect(rendered.contains("Content-Type: text/cloud-config"))
        #expect(rendered.contains("Content-Type: text/x-shellscript"))
        #expect(rendered.contains(script))
        // Without keys the script goes as it is.
        #expect(try UserData(text: script, sshAuthorizedKeys: []).render() == script)
    }

    @Test(arguments: [
        ("just some text", UserData.Problem.unsupportedFormat),
        ("#cloud-config\n- a\n- list\n", .notAMapping),
        ("#cloud-config\npassword: [unclosed\n", .notYAML(line: nil)),
    ])
    func badUserDataIsRefusedWithoutEchoingIt(text: String, expected: UserData.Problem) {
        do {
            _ = try UserData(text: text, sshAuthorizedKeys: []).render()
            Issue.record("accepted bad user data")
        } catch {
            if case .notYAML = expected {
                guard case .notYAML = error else { Issue.record("got \(error)"); return }
            } else {
                #expect(error == expected)
            }
            #expect(!error.description.contains("unclosed") && !error.description.contains("some text"))
        }
    }

    /// The merge through libyaml's events: every shape `ssh_authorized_keys` and the root can take.
    @Test func keysAreMergedWhateverShapeTheCloudConfigHas() throws {
        func merged(_ text: String, keys: [String] = [key]) throws -> [String: Any] {
            let rendered = try UserData(text: text, sshAuthorizedKeys: keys).render()
            #expect(rendered.hasPrefix("#cloud-config\n"))
            return try #require(try Yams.load(yaml: rendered) as? [String: Any], "\(rendered)")
        }
        // No entry yet: added last; the other values keep their types (a quoted "yes" stays a string).
        var document = try merged("#cloud-config\nhostname: vm1\nlocale: 'yes'\nretries: 3\n")
        #expect(document["ssh_authorized_keys"] as? [String] == [key])
        #expect(document["hostname"] as? String == "vm1" && document["locale"] as? String == "yes" && document["retries"] as? Int == 3)
        // An entry that is not a sequence (a lone string, or null) is replaced by the keys.
        document = try merged("#cloud-config\nssh_authorized_keys: ssh-rsa AAAAB3lone\nusers: [default]\n")
        #expect(document["ssh_authorized_keys"] as? [String] == [key] && document["users"] as? [String] == ["default"])
        document = try merged("#cloud-config\nssh_authorized_keys:\n")
        #expect(document["ssh_authorized_keys"] as? [String] == [key])
        // A flow mapping and a flow sequence; keys already there once.
        document = try merged("#cloud-config\n{ssh_authorized_keys: [\"\(key)\", ssh-rsa AAAAB3other], a: 1}\n")
        #expect(document["ssh_authorized_keys"] as? [String] == [key, "ssh-rsa AAAAB3other"] && document["a"] as? Int == 1)
        // An empty document, a null root, or only an explicit document start: a mapping with the keys.
        for empty in ["#cloud-config\n", "#cloud-config\n~\n", "#cloud-config\n---\n"] {
            #expect(try merged(empty).keys.sorted() == ["ssh_authorized_keys"], "\(empty)")
        }
        // Anchors and aliases, block scalars and nested values come back as they were.
        let rich = "#cloud-config\nbase: &b {shell: /bin/bash}\nusers:\n  - <<: *b\n    name: ops\nwrite_files:\n  - path: /etc/motd\n    content: |\n      line one\n      line two\n"
        document = try merged(rich, keys: [key, "ssh-rsa AAAAB3second"])
        #expect(document["ssh_authorized_keys"] as? [String] == [key, "ssh-rsa AAAAB3second"])
        let users = try #require(document["users"] as? [[String: Any]])
        #expect(users.first?["name"] as? String == "ops" && users.first?["shell"] as? String == "/bin/bash")
        #expect((document["write_files"] as? [[String: Any]])?.first?["content"] as? String == "line one\nline two\n")
        // Without keys a valid cloud-config goes exactly as written (comments included).
        #expect(try UserData(text: rich + "# note\n", sshAuthorizedKeys: []).render() == rich + "# note\n")
    }

    @Test(arguments: [
        "#cloud-config\na: 1\n---\nb: 2\n",  // two documents: cloud-init reads one
        "#cloud-config\nusers: *nowhere\n",  // an alias without its anchor
        "#cloud-config\na: \"unterminated\n",
        "#cloud-config\n\tkey: tab-indented\n",
    ])
    func notYAMLIsRefused(text: String) {
        #expect(throws: UserData.Problem.self) { try UserData(text: text, sshAuthorizedKeys: [key]).render() }
        do {
            _ = try UserData(text: text, sshAuthorizedKeys: []).render()
            Issue.record("accepted: \(text)")
        } catch {
            guard case .notYAML = error else { Issue.record("\(text): got \(error)"); return }
        }
    }

    @Test func aLineNumberNamesWhereTheYAMLBreaks() {
        #expect(throws: UserData.Problem.notYAML(line: 3)) {
            try UserData(text: "#cloud-config\nok: 1\nbad: \"x\" y\nmore: 2\n", sshAuthorizedKeys: []).render()
        }
    }

    /// Every string double-quoted: values YAML would read as another type, or that hold quotes,
    /// backslashes and control characters, come back as the same strings.
    @Test func networkConfigStringsReadBackUnchanged() throws {
        let awkward = ["yes", "on", "1:30", "0x1f", "~", "a \"quoted\" \\ value", "tab\there", "bell\u{07}", "next\u{85}line", "ünï"]
        let nic = NetworkConfig.Interface(id: "eth0", mac: MACAddress("52:54:00:12:34:56")!, nameServers: ["10.0.0.1"],
                                          searchDomains: awkward)
        let yaml = NetworkConfig(interfaces: [nic]).yaml()
        let document = try #require(try Yams.load(yaml: yaml) as? [String: Any])
        let eth0 = try #require((document["ethernets"] as? [String: [String: Any]])?["eth0"])
        #expect((eth0["nameservers"] as? [String: [String]])?["search"] == awkward)
        #expect(eth0["routes"] == nil && eth0["addresses"] == nil && eth0["mtu"] == nil)
        let empty = try #require(try Yams.load(yaml: NetworkConfig(interfaces: []).yaml()) as? [String: Any])
        #expect(empty["version"] as? Int == 2 && (empty["ethernets"] as? [String: Any])?.isEmpty == true)
    }

    @Test func keysAreCheckedLineByLine() throws {
        #expect(try UserData.parseKeys("# ops keys\n\n\(key)\n") == [key])
        #expect(throws: UserData.Problem.badKey(line: 2)) { try UserData.parseKeys("\(key)\nnot-a-key AAAA\n") }
        #expect(throws: UserData.Problem.badKey(line: 1)) { try UserData.parseKeys("ssh-ed25519 not$base64") }
    }

    @Test func instanceIDIsStableForOneDiskAndChangesWithIt() {
        let first = NoCloudSeed.instanceID(hostname: "vm1", disk: (device: 2049, inode: 1234))
        #expect(first == NoCloudSeed.instanceID(hostname: "vm1", disk: (device: 2049, inode: 1234)))
        #expect(first != NoCloudSeed.instanceID(hostname: "vm1", disk: (device: 2049, inode: 1235)))
        #expect(first != NoCloudSeed.instanceID(hostname: "vm2", disk: (device: 2049, inode: 1234)))
        #expect(first.hasPrefix("iid-kvm-launch-") && first.count == "iid-kvm-launch-".count + 16)
    }

    @Test func theSummaryNeverShowsUserData() throws {
        let secret = "#cloud-config\nchpasswd:\n  list: |\n    root:Sup3rSecret\n"
        let seed = NoCloudSeed(instanceID: "iid-x", hostname: "vm1", userData: UserData(text: secret, sshAuthorizedKeys: [key]),
                               network: NetworkConfig(interfaces: [providerNIC]))
        let summary = seed.redactedSummary()
        #expect(!summary.contains("Sup3rSecret") && !summary.contains("chpasswd"))
        #expect(summary.contains("user-data: \(try seed.userData.render().utf8.count) bytes (redacted), 1 SSH key(s)"))
    }

    @Test func oversizedUserDataIsRefused() {
        let big = "#!/bin/sh\n# " + String(repeating: "x", count: NoCloudSeed.maximumBytes) + "\n"
        let seed = NoCloudSeed(instanceID: "iid-x", hostname: nil, userData: UserData(text: big, sshAuthorizedKeys: []),
                               network: NetworkConfig(interfaces: []))
        #expect { try seed.image() } throws: { error in
            guard case NoCloudSeed.Problem.tooLarge(let bytes) = error else { return false }
            return bytes > NoCloudSeed.maximumBytes
        }
    }
}

@Suite("ISO 9660 writer")
struct ISO9660Tests {
    @Test func volumeDescriptorsAreWhereReadersLook() throws {
        let image = try ISO9660Image(label: "cidata", files: [.init(name: "meta-data", contents: Array("a: 1\n".utf8))]).bytes()
        #expect(image.count % 2048 == 0)
        #expect(Array(image[32768..<32774]) == [1] + Array("CD001".utf8))
        #expect(String(decoding: image[32768 + 40 ..< 32768 + 46], as: UTF8.self) == "cidata")
        #expect(Array(image[34816..<34822]) == [2] + Array("CD001".utf8))
        #expect(Array(image[34816 + 88 ..< 34816 + 91]) == Array("%/E".utf8))
        #expect(image[36864] == 255)
        // Same inputs, same bytes: no clock is read.
        #expect(image == (try ISO9660Image(label: "cidata", files: [.init(name: "meta-data", contents: Array("a: 1\n".utf8))]).bytes()))
    }

    @Test func badNamesAndLabelsAreRefused() {
        #expect(throws: ISO9660Image.Error.badLabel("ci data")) { try ISO9660Image(label: "ci data", files: []).bytes() }
        #expect(throws: ISO9660Image.Error.badName("a/b")) { try ISO9660Image(label: "x", files: [.init(name: "a/b", contents: [])]).bytes() }
        #expect(throws: ISO9660Image.Error.duplicateName("a")) {
            try ISO9660Image(label: "x", files: [.init(name: "a", contents: []), .init(name: "a", contents: [1])]).bytes()
        }
    }

    /// Independent readers: blkid (label, type) and genisoimage's isoinfo (Joliet names, contents, the
    /// primary descriptor's 8.3 names). This kernel has no iso9660 driver; the guest's kernel mounts it.
    @Test func blkidAndIsoinfoReadTheSeed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kl-seed-\(uniqueSuffix())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let large = [UInt8]((0..<5000).map { UInt8($0 % 251) })
        let files: [ISO9660Image.File] = [
            .init(name: "meta-data", contents: Array("instance-id: iid-1\n".utf8)),
            .init(name: "user-data", contents: Array("#cloud-config\n{}\n".utf8)),
            .init(name: "network-config", contents: large),
            .init(name: "empty", contents: []),
        ]
        let path = directory + "/seed.iso"
        FileManager.default.createFile(atPath: path, contents: Data(try ISO9660Image(label: "cidata", files: files).bytes()))
        #expect(try run(["blkid", "-o", "value", "-s", "LABEL", path]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "cidata")
        #expect(try run(["blkid", "-o", "value", "-s", "TYPE", path]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "iso9660")
        let listing = try run(["isoinfo", "-J", "-f", "-i", path]).stdout.split(separator: "\n").map(String.init).sorted()
        #expect(listing == ["/empty", "/meta-data", "/network-config", "/user-data"])
        for file in files {
            let extracted = try run(["isoinfo", "-J", "-i", path, "-x", "/\(file.name)"]).stdout
            #expect(Array(extracted.utf8) == file.contents || String(decoding: file.contents, as: UTF8.self) == extracted, "\(file.name)")
        }
        let primary = try run(["isoinfo", "-f", "-i", path]).stdout
        #expect(primary.contains("/META_DAT.;1") && primary.contains("/NETWORK_.;1"))
        let descriptor = try run(["isoinfo", "-d", "-i", path]).stdout
        #expect(descriptor.contains("Volume id: cidata"))
        #expect(descriptor.contains("Joliet with UCS level 3 found"))
    }
}

/// cloud-init itself (Debian's cloud-init 22.4 Python package) reads the seed kvm-launch builds:
/// NoCloud's file reader, its network-state parser and renderer, and its user-data processor.
@Suite("cloud-init reads the seed")
struct CloudInitReadsTheSeedTests {
    static let reader = """
        import json, sys, os
        from cloudinit import util, user_data, helpers
        from cloudinit.sources.DataSourceNoCloud import _merge_new_seed
        from cloudinit.net import network_state, networkd
        base = sys.argv[1]
        seeded = util.pathprefix2dict(base, required=["user-data", "meta-data"], optional=["vendor-data", "network-config"])
        data = _merge_new_seed({"meta-data": {}, "user-data": "", "vendor-data": "", "network-config": None}, seeded)
        state = network_state.parse_net_config_data(data["network-config"])
        out = {"meta": data["meta-data"], "interfaces": {}, "routes": []}
        for iface in state.iter_interfaces():
            out["interfaces"][iface["name"]] = {"mac": iface.get("mac_address"), "mtu": iface.get("mtu"),
                "subnets": [dict((k, v) for k, v in s.items() if k in ("type", "address", "prefix", "netmask", "routes", "dns_nameservers", "dns_search")) for s in iface.get("subnets", [])]}
        paths = helpers.Paths({"cloud_dir": os.path.join(sys.argv[2], "cloud"), "run_dir": os.path.join(sys.argv[2], "run")})
        message = user_data.UserDataProcessor(paths).process(data["user-data"])
        parts = [(p.get_content_type(), p.get_payload(decode=True).decode()) for p in message.walk() if not p.is_multipart()]
        out["parts"] = parts
        json.dump(out, sys.stdout, default=str)
        """

    @Test func cloudInitParsesMetaDataNetworkAndUserData() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kl-seed-\(uniqueSuffix())").path
        try FileManager.default.createDirectory(atPath: directory + "/mnt", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let seed = NoCloudSeed(instanceID: "iid-kvm-launch-0123456789abcdef", hostname: "vm1",
                               userData: UserData(text: "#!/bin/sh\necho hi\n", sshAuthorizedKeys: [key]),
                               network: NetworkConfig(interfaces: [calicoNIC, providerNIC]))
        FileManager.default.createFile(atPath: directory + "/seed.iso", contents: Data(try seed.image()))
        try "\(Self.reader)".write(toFile: directory + "/reader.py", atomically: true, encoding: .utf8)
        // The files as the guest sees them, extracted by an independent ISO reader.
        for name in ["meta-data", "user-data", "network-config"] {
            let contents = try run(["isoinfo", "-J", "-i", directory + "/seed.iso", "-x", "/\(name)"]).stdout
            try contents.write(toFile: "\(directory)/mnt/\(name)", atomically: true, encoding: .utf8)
        }
        let output = try run(["/usr/bin/python3", directory + "/reader.py", directory + "/mnt/", directory])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any], "\(output.stderr)")
        let meta = try #require(json["meta"] as? [String: Any])
        #expect(meta["instance-id"] as? String == "iid-kvm-launch-0123456789abcdef")
        #expect(meta["local-hostname"] as? String == "vm1")
        let interfaces = try #require(json["interfaces"] as? [String: [String: Any]])
        let eth0 = try #require(interfaces["eth0"])
        #expect(eth0["mac"] as? String == "52:54:00:12:34:56")
        #expect(eth0["mtu"] as? Int == 1440)
        let subnets = try #require(eth0["subnets"] as? [[String: Any]])
        #expect(subnets.contains { $0["address"] as? String == "10.244.1.7" })
        #expect(subnets.contains { $0["address"] as? String == "fd00:10:244::7" })
        #expect(interfaces["net1"]?["mtu"] as? Int == 9000)
        let parts = try #require(json["parts"] as? [[String]])
        #expect(parts.contains { $0[0] == "text/cloud-config" && $0[1].contains(key) })
        #expect(parts.contains { $0[0] == "text/x-shellscript" && $0[1].contains("echo hi") })
    }
}
