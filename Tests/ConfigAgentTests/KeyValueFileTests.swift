import TestSupport
import Testing

@testable import ConfigAgent

@Suite("key=value files")
struct KeyValueFileTests {
    private func entries(_ text: String, options: KeyValueFile.Options = .init()) -> [String: String] {
        var result: [String: String] = [:]
        for entry in KeyValueFile.parse(text, file: "t.conf", options: options).entries {
            result[entry.key.path] = entry.value
        }
        return result
    }

    @Test("a line is split at its first '=' only; the rest is the value, verbatim")
    func splitsAtFirstEquals() {
        let parsed = entries(
            """
            compute/nova/nova.conf/database/connection=mysql://nova:p=w@db/nova?charset=utf8&x=1
            general/SECRET_B64=c2VjcmV0PT0=
            general/PADDED==
            general/EMPTY=
            general/SPACED=  leading spaces stay
            general/HASH=value # not a comment
            """
        )
        #expect(parsed["compute/nova/nova.conf/database/connection"] == "mysql://nova:p=w@db/nova?charset=utf8&x=1")
        #expect(parsed["general/SECRET_B64"] == "c2VjcmV0PT0=")
        #expect(parsed["general/PADDED"] == "=")
        #expect(parsed["general/EMPTY"] == "")
        #expect(parsed["general/SPACED"] == "  leading spaces stay")
        #expect(parsed["general/HASH"] == "value # not a comment")
    }

    @Test("unicode keys and values survive")
    func unicode() {
        let parsed = entries("general/GREETING=¡hola, 世界! ✓\ncompute/nova/nova.conf/DEFAULT/descripción=çà et là 🚀\n")
        #expect(parsed["general/GREETING"] == "¡hola, 世界! ✓")
        #expect(parsed["compute/nova/nova.conf/DEFAULT/descripción"] == "çà et là 🚀")
    }

    @Test("trailing spaces and tabs are trimmed, with a notice that names the line")
    func trailingWhitespace() {
        let parsed = KeyValueFile.parse("general/A=x \t\ngeneral/B=y\r\n", file: "env", options: .init())
        #expect(parsed.entries.map(\.value) == ["x", "y"])
        #expect(parsed.notices == [.trailingWhitespaceTrimmed(SourceLocation(file: "env", line: 1), key: "general/A")])
        #expect(parsed.notices[0].description.hasPrefix("env:1: "))
    }

    @Test("blank lines and # comments are ignored and counted in line numbers")
    func commentsAndBlankLines() {
        let parsed = KeyValueFile.parse("# header\n\n   \n  # indented comment\ngeneral/A=1\n", file: "f", options: .init())
        #expect(parsed.errors.isEmpty)
        #expect(parsed.entries.count == 1)
        #expect(parsed.entries[0].location == SourceLocation(file: "f", line: 5))
    }

    @Test(
        "malformed lines are reported with file:line",
        arguments: [
            ("just some words", "no '='"),
            ("=value", "empty key"),
            ("general/A =1", "spaces around the key"),
            (" general/A=1", "spaces around the key"),
            ("general/1ABC=1", "general/NAME"),
            ("general/A/B=1", "general/NAME"),
            ("/general/A=1", "leading slash"),
            ("compute/nova=1", "ROLE/SERVICE/FILE/SECTION/KEY"),
            ("compute/nova/nova.conf/a/b/c=1", "ROLE/SERVICE/FILE/SECTION/KEY"),
            ("compute//nova.conf/DEFAULT/x=1", "service"),
            ("compute/nova/../DEFAULT/x=1", "file"),
            ("compute/nova/nova.conf/DEFAULT/a:b=1", "INI key"),
            ("compute/nova/nova.conf/[x]/a=1", "section"),
            ("RSYNC_ENABLE=true", "outside the tree"),
            ("Compute/nova/nova.conf/DEFAULT/x=1", "outside the tree"),
        ]
    )
    func malformed(line: String, reason: String) {
        let parsed = KeyValueFile.parse("general/OK=1\n\(line)\n", file: "dir/bad.conf", options: .init())
        #expect(parsed.errors.count == 1)
        let message = parsed.errors.first?.description ?? ""
        #expect(message.hasPrefix("dir/bad.conf:2: "), "\(message)")
        #expect(message.contains(reason), "\(message)")
        #expect(parsed.entries.count == 1)
    }

    @Test("error messages never contain the value of a line")
    func errorsHideValues() {
        let parsed = KeyValueFile.parse("general/PASSWORD hunter2\nnot a key=hunter2\n", file: "f", options: .init())
        #expect(parsed.errors.count == 2)
        for error in parsed.errors { #expect(!error.description.contains("hunter2")) }
    }

    @Test("percent escapes are kept with a notice, or decoded as the old loader did")
    func percentEscapes() {
        let text = "compute/nova/nova.conf/libvirt/connection_uri=qemu%2Btcp://localhost/system\ngeneral/RATE=100%\n"
        let strict = KeyValueFile.parse(text, file: "f", options: .init())
        #expect(strict.entries.map(\.value) == ["qemu%2Btcp://localhost/system", "100%"])
        #expect(strict.notices == [.percentEscapesKept(SourceLocation(file: "f", line: 1), key: "compute/nova/nova.conf/libvirt/connection_uri")])
        let decoded = KeyValueFile.parse(text, file: "f", options: .init(percentDecode: true))
        #expect(decoded.entries.map(\.value) == ["qemu+tcp://localhost/system", "100%"])
        #expect(decoded.notices.isEmpty)
        let invalid = KeyValueFile.parse("general/X=%FF%FE\n", file: "f", options: .init(percentDecode: true))
        #expect(invalid.errors.map(\.location.line) == [1])
    }

    @Test("with skipInvalidLines bad lines become notices and the rest loads")
    func skipInvalid() {
        let parsed = KeyValueFile.parse("RSYNC_ENABLE=true\ngeneral/A=1\nno equals here\n", file: "f", options: .init(skipInvalidLines: true))
        #expect(parsed.errors.isEmpty)
        #expect(parsed.entries.map(\.key) == [.general("A")])
        #expect(parsed.notices.count == 2)
        #expect(parsed.notices.map(\.description).allSatisfy { $0.contains(": skipped: ") })
    }

    @Test("keys map onto the data model")
    func keyModel() throws {
        #expect(try ConfigKey(path: "general/SELECTED_NETWORK") == .general("SELECTED_NETWORK"))
        let file = ConfigFileID(role: .compute, service: "nova", file: "nova.conf")
        #expect(try ConfigKey(path: "compute/nova/nova.conf/DEFAULT/my_ip") == .setting(SettingKey(file: file, section: "DEFAULT", key: "my_ip")))
        let rsync = ConfigFileID(role: .controller, service: "swift", file: "rsyncd.conf")
        #expect(try ConfigKey(path: "controller/swift/rsyncd.conf/log file") == .setting(SettingKey(file: rsync, section: nil, key: "log file")))
        #expect(try ConfigKey(path: "controller/swift/proxy-server.conf/filter:authtoken/paste.filter_factory").path
            == "controller/swift/proxy-server.conf/filter:authtoken/paste.filter_factory")
        #expect(try ConfigFileID(path: "compute/nova/nova.conf") == file)
        #expect(throws: ConfigKeyError.self) { try ConfigFileID(path: "compute/nova") }
        #expect(throws: ConfigKeyError.self) { try ConfigFileID(path: "storage/nova/nova.conf") }
    }
}

@Suite("reading directories")
struct ConfigTreeReadTests {
    @Test("later files override earlier ones, with a notice naming both places")
    func overrides() async throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        do {
            try writeFile(directory + "/a.conf", "general/A=1\ngeneral/B=same\n")
            try writeFile(directory + "/b.conf", "general/A=2\ngeneral/B=same\n")
            try writeFile(directory + "/.hidden", "general/HIDDEN=1\n")
            let (tree, notices) = try ConfigTree.read(paths: [directory])
            #expect(tree.general == ["A": "2", "B": "same"])
            #expect(notices == [.overridden(SourceLocation(file: directory + "/b.conf", line: 1), key: "general/A", previous: SourceLocation(file: directory + "/a.conf", line: 1))])
        }
    }

    @Test("every bad line of every file is reported, and no tree is returned")
    func allErrors() async throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        do {
            try writeFile(directory + "/one/a.conf", "general/A=1\nbroken\n")
            try writeFile(directory + "/two/b.conf", "general/=1\ngeneral/B=2\n")
            let error = #expect(throws: ConfigTree.InputErrors.self) { try ConfigTree.read(paths: [directory]) }
            #expect(error?.errors.map(\.location) == [
                SourceLocation(file: directory + "/one/a.conf", line: 2),
                SourceLocation(file: directory + "/two/b.conf", line: 1),
            ])
            #expect(error?.description.contains("nothing was loaded") == true)
        }
    }

    @Test("a UTF-8 byte order mark at the start of a file is ignored")
    func byteOrderMark() async throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        try writeFile(directory + "/env.conf", "\u{FEFF}general/A=1\n")
        #expect(try ConfigTree.read(paths: [directory]).tree.general == ["A": "1"])
    }

    @Test("a missing path is an error naming it")
    func missingPath() {
        let error = #expect(throws: ConfigTree.InputErrors.self) { try ConfigTree.read(paths: ["/nonexistent/config-agent"]) }
        #expect(error?.description.contains("/nonexistent/config-agent") == true)
    }

    @Test("the reference set: strict loading names exactly its three lines outside the model")
    func referenceStrict() {
        let error = #expect(throws: ConfigTree.InputErrors.self) { try ConfigTree.read(paths: [fixture("reference")]) }
        let places = error?.errors.map { "\(lastTwo($0.location.file)):\($0.location.line)" }
        #expect(places == ["cinder/cinder.conf:33", "cinder/cinder.conf:34", "swift/rsync:1"])
    }

    @Test("the reference set loads with the legacy options: all roles, quirks handled")
    func referenceLegacy() throws {
        let (tree, notices) = try ConfigTree.read(paths: [fixture("reference")], options: .legacy)
        let counts = tree.counts
        // Distinct keys per root, as `grep -h ^ROOT/ -r reference | cut -d= -f1 | sort -u | wc -l` counts them.
        #expect(counts.general == 53)
        #expect(counts.settings == [.compute: 63, .controller: 245])
        #expect(counts.files == [.compute: 3, .controller: 16])
        let nova = ConfigFileID(role: .compute, service: "nova", file: "nova.conf")
        // %2B decoded as the old loader's form upload did; the trailing tab trimmed.
        #expect(tree[.setting(SettingKey(file: nova, section: "libvirt", key: "connection_uri"))] == "qemu+tcp://localhost/system")
        #expect(tree[.setting(SettingKey(file: nova, section: "cinder", key: "catalog_info"))] == "volumev2:cinderv2:internalURL")
        #expect(tree[.setting(SettingKey(file: nova, section: "DEFAULT", key: "my_ip"))] == "$HOSTNAME")
        #expect(notices.contains { if case .trailingWhitespaceTrimmed = $0 { true } else { false } })
        #expect(notices.filter { if case .skipped = $0 { true } else { false } }.count == 3)
        // The swift files reuse account-server.conf keys: later files override, with notices.
        #expect(notices.contains { if case .overridden = $0 { true } else { false } })
        #expect(tree.files.contains(ConfigFileID(role: .controller, service: "swift", file: "rsyncd.conf")))
    }
}

/// The last two components of a path, for compact comparisons.
private func lastTwo(_ path: String) -> String {
    path.split(separator: "/").suffix(2).joined(separator: "/")
}
