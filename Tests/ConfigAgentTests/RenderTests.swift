import Foundation
import TestSupport
import Testing

@testable import ConfigAgent

#if canImport(Glibc)
import Glibc
#endif

/// Renders of the reference set into realistic existing files, compared with committed golden files.
///
/// Set `UPDATE_GOLDEN=1` to rewrite the golden files after a deliberate change: a file that differs is
/// rewritten and its test still fails; review the diff and run again without it.
@Suite("render")
struct RenderTests {
    static let hostEnvironment = ["HOSTNAME": "compute-1.example"]

    static func referenceTree() throws -> ConfigTree {
        try ConfigTree.read(paths: [fixture("reference")], options: .legacy).tree
    }

    @Test(
        "reference settings merged into existing files match the golden files",
        arguments: [
            ("compute/nova/nova.conf", "existing/nova.conf", "golden/compute-nova.conf"),
            ("compute/neutron/neutron.conf", "existing/neutron.conf", "golden/compute-neutron.conf"),
            ("controller/swift/rsyncd.conf", "existing/rsyncd.conf", "golden/controller-rsyncd.conf"),
            ("compute/neutron/openvswitch_agent.ini", nil, "golden/compute-openvswitch_agent.ini"),
        ]
    )
    func golden(file: String, existing: String?, golden: String) throws {
        let tree = try Self.referenceTree()
        let renderer = ConfigRenderer(general: tree.general, environment: Self.hostEnvironment)
        let text = try renderer.render(ConfigFileID(path: file), from: tree, into: existing.map(fixtureText))
        // Always compared with the golden file as it was before this run, never with what the run wrote.
        let committed = try fixtureText(golden)
        #expect(text == committed)
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" && text != committed {
            try writeFile(fixture(golden), text)
            Issue.record("rewrote \(golden) (UPDATE_GOLDEN=1): review the diff, then run again without UPDATE_GOLDEN")
        }
    }

    @Test("every value of the file is in the result, expanded; the rest of the file is untouched")
    func semantics() throws {
        let tree = try Self.referenceTree()
        let file = try ConfigFileID(path: "compute/nova/nova.conf")
        let renderer = ConfigRenderer(general: tree.general, environment: Self.hostEnvironment)
        let existing = try fixtureText("existing/nova.conf")
        let document = INIDocument(try renderer.render(file, from: tree, into: existing))
        for setting in tree.settings(of: file) {
            let expected = try VariableSubstitution.expand(setting.value, variables: renderer.variables)
            #expect(document.value(section: setting.section, key: setting.key) == expected, "\(setting.key)")
        }
        #expect(document.value(section: "DEFAULT", key: "my_ip") == "compute-1.example")
        #expect(document.value(section: "keystone_authtoken", key: "password") == "nova_password")
        // Text that was already in the file keeps oslo.config's own $references.
        #expect(document.value(section: "DEFAULT", key: "instances_path") == "$state_path/instances")
        #expect(document.value(section: "api_database", key: "connection") == "sqlite:////var/lib/nova/nova_api.sqlite")
        let original = INIDocument(existing)
        #expect(Array(document.sections.prefix(original.sections.count)) == original.sections)
    }

    @Test("an unknown variable fails the render and names the setting and the variable")
    func unknownVariable() throws {
        let tree = try Self.referenceTree()
        let renderer = ConfigRenderer(general: tree.general, environment: [:])
        let error = #expect(throws: RenderError.self) {
            try renderer.render(ConfigFileID(path: "compute/nova/nova.conf"), from: tree, into: nil)
        }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains("$HOSTNAME"))
        #expect(message.contains("compute/nova/nova.conf/DEFAULT/my_ip"))
        // Allowed explicitly, the reference stays as written.
        let lenient = ConfigRenderer(general: tree.general, environment: [:], unknownVariables: .keep)
        let text = try lenient.render(ConfigFileID(path: "compute/nova/nova.conf"), from: tree, into: nil)
        #expect(INIDocument(text).value(section: "DEFAULT", key: "my_ip") == "$HOSTNAME")
    }

    @Test("a file without settings is an error")
    func noSettings() throws {
        let renderer = ConfigRenderer(general: [:], environment: [:])
        #expect(throws: RenderError.self) {
            try renderer.render(ConfigFileID(path: "compute/nova/typo.conf"), from: ConfigTree(), into: nil)
        }
    }

    @Test("a value with a line break cannot be rendered")
    func lineBreak() throws {
        let file = try ConfigFileID(path: "compute/x/x.conf")
        let tree = ConfigTree(values: [.setting(SettingKey(file: file, section: "s", key: "k")): "a\nb"])
        #expect(throws: RenderError.lineBreak(SettingKey(file: file, section: "s", key: "k"))) {
            try ConfigRenderer(general: [:], environment: [:]).render(file, from: tree, into: nil)
        }
    }
}

@Suite("writing rendered files")
struct AtomicWriteTests {
    private func mode(_ path: String) -> mode_t {
        var info = stat()
        _ = stat(path, &info)
        return info.st_mode & 0o7777
    }

    private let file = try! ConfigFileID(path: "compute/x/x.conf")
    private var tree: ConfigTree {
        ConfigTree(values: [.setting(SettingKey(file: file, section: "s", key: "k")): "v", .general("A"): "1"])
    }

    @Test("a new file is created readable by owner and group only")
    func newFileMode() async throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        do {
            let renderer = ConfigRenderer(general: [:], environment: [:])
            #expect(try renderer.write(file, from: tree, into: directory) == .created)
            #expect(mode(directory + "/x.conf") == 0o640)
            #expect(try readFile(directory + "/x.conf") == "[s]\nk = v\n")
            #expect(try renderer.write(file, from: tree, into: directory) == .unchanged)
            // Only the target remains: no temporary files left behind.
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["x.conf"])
        }
    }

    @Test("an existing file keeps its mode")
    func keepsMode() async throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        do {
            try writeFile(directory + "/x.conf", "[s]\nk = old\n")
            chmod(directory + "/x.conf", 0o604)
            #expect(try ConfigRenderer(general: [:], environment: [:]).write(file, from: tree, into: directory) == .updated)
            #expect(mode(directory + "/x.conf") == 0o604)
            #expect(try readFile(directory + "/x.conf") == "[s]\nk = v\n")
        }
    }

    @Test("an existing file keeps its owner", .enabled(if: isRoot, "needs root: chown to another user"))
    func keepsOwner() async throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        do {
            let path = directory + "/x.conf"
            try writeFile(path, "[s]\nk = old\n")
            #expect(chown(path, 4321, 8765) == 0)
            try ConfigRenderer(general: [:], environment: [:]).write(file, from: tree, into: directory)
            var info = stat()
            #expect(stat(path, &info) == 0)
            #expect(info.st_uid == 4321 && info.st_gid == 8765)
            #expect(try readFile(path) == "[s]\nk = v\n")
        }
    }

    @Test("a missing directory is an error naming it")
    func missingDirectory() throws {
        let error = #expect(throws: AtomicFileError.self) {
            try ConfigRenderer(general: [:], environment: [:]).write(file, from: tree, into: "/nonexistent/config-agent")
        }
        #expect(error?.description.contains("/nonexistent/config-agent") == true)
    }
}

/// The merge checked against the real `crudini --merge` (Debian's crudini).
@Suite("render compared with crudini")
struct CrudiniComparisonTests {
    static let crudini = "/usr/bin/crudini"

    @Test(
        "merging the reference settings gives the same keys and values as crudini --merge",
        .enabled(if: FileManager.default.isExecutableFile(atPath: crudini), "needs crudini (scripts/packages-test.txt)"),
        arguments: [("compute/nova/nova.conf", "existing/nova.conf"), ("compute/neutron/neutron.conf", "existing/neutron.conf")]
    )
    func sameAsCrudini(file: String, existing: String) throws {
        let tree = try RenderTests.referenceTree()
        let id = try ConfigFileID(path: file)
        let renderer = ConfigRenderer(general: tree.general, environment: RenderTests.hostEnvironment)
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path

        // crudini's input: the file's settings as INI, values already expanded.
        var input = ""
        var section: String?? = .none
        for setting in tree.settings(of: id) {
            if section != .some(setting.section) {
                input += "[\(setting.section ?? "DEFAULT")]\n"
                section = .some(setting.section)
            }
            input += "\(setting.key) = \(try VariableSubstitution.expand(setting.value, variables: renderer.variables))\n"
        }
        try FileManager.default.copyItem(atPath: fixture(existing), toPath: directory + "/crudini.conf")
        let merge = try run([Self.crudini, "--merge", directory + "/crudini.conf"], input: input, check: false)
        #expect(merge.status == 0, "\(merge.stderr)")
        try writeFile(directory + "/ours.conf", try renderer.render(id, from: tree, into: try fixtureText(existing)))

        func lines(_ path: String) throws -> [String] {
            let result = try run([Self.crudini, "--get", "--format=lines", path], check: false)
            return result.stdout.split(separator: "\n").map(String.init).sorted()
        }
        let expected = try lines(directory + "/crudini.conf")
        #expect(!expected.isEmpty)
        #expect(try lines(directory + "/ours.conf") == expected)
    }
}
