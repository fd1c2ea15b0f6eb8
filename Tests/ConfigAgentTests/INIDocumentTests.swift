import Testing

@testable import ConfigAgent

@Suite("INI merge (crudini --merge semantics)")
struct INIDocumentTests {
    private func merged(_ text: String, _ settings: [(String?, String, String)]) -> String {
        var document = INIDocument(text)
        document.merge(settings.map { INISetting(section: $0.0, key: $0.1, value: $0.2) })
        return document.text
    }

    @Test("an unchanged document is reproduced byte for byte")
    func roundTrip() {
        let text = "# c\n\n[DEFAULT]\nkey=value\n  continued\n; other comment\nodd line without separator\n[s]\nk : v\n"
        #expect(INIDocument(text).text == text)
    }

    @Test("an existing key is updated in place, keeping its spelling and the comments around it")
    func updateInPlace() {
        let text = "[DEFAULT]\n# about debug\ndebug=false\n#verbose = true\nverbose   =   false\nlog_dir = /var/log\n"
        let result = merged(text, [("DEFAULT", "debug", "True"), ("DEFAULT", "verbose", "True")])
        #expect(result == "[DEFAULT]\n# about debug\ndebug=True\n#verbose = true\nverbose   =   True\nlog_dir = /var/log\n")
    }

    @Test("a new key goes after the last key of its section, before trailing comments")
    func newKeyInSection() {
        let text = "[database]\nconnection = sqlite://\n# trailing comment\n\n[other]\nx = 1\n"
        let result = merged(text, [("database", "max_pool_size", "10")])
        #expect(result == "[database]\nconnection = sqlite://\nmax_pool_size = 10\n# trailing comment\n\n[other]\nx = 1\n")
    }

    @Test("a section with only comments gets new keys right after its header")
    func emptySection() {
        let result = merged("[neutron]\n# settings go here\n\n[vnc]\nenabled = true\n", [("neutron", "url", "http://n:9696")])
        #expect(result == "[neutron]\nurl = http://n:9696\n# settings go here\n\n[vnc]\nenabled = true\n")
    }

    @Test("a new section is appended after one blank line")
    func newSection() {
        #expect(merged("[a]\nx = 1\n", [("b", "y", "2"), ("b", "z", "3")]) == "[a]\nx = 1\n\n[b]\ny = 2\nz = 3\n")
        #expect(merged("[a]\nx = 1\n\n", [("b", "y", "2")]) == "[a]\nx = 1\n\n[b]\ny = 2\n")
        #expect(merged("", [("b", "y", "2")]) == "[b]\ny = 2\n")
    }

    @Test("a missing [DEFAULT] is added before the first section, above its comments")
    func newDefault() {
        let text = "# file header\n\n# about a\n[a]\nx = 1\n"
        #expect(merged(text, [("DEFAULT", "debug", "True")]) == "# file header\n\n[DEFAULT]\ndebug = True\n\n# about a\n[a]\nx = 1\n")
        #expect(merged("[a]\nx = 1\n", [("DEFAULT", "d", "1")]) == "[DEFAULT]\nd = 1\n\n[a]\nx = 1\n")
    }

    @Test("keys before any section are their own section, not [DEFAULT]")
    func globalKeys() {
        let text = "# rsync\nuid = nobody\n\n[DEFAULT]\nuid = other\n"
        let result = merged(text, [(nil, "uid", "swift"), (nil, "gid", "swift"), ("DEFAULT", "uid", "d")])
        #expect(result == "# rsync\nuid = swift\ngid = swift\n\n[DEFAULT]\nuid = d\n")
        // A file without keys before its first section gets them at the top.
        #expect(merged("[m]\npath = /srv\n", [(nil, "uid", "swift")]) == "uid = swift\n\n[m]\npath = /srv\n")
    }

    @Test("a repeated key: the last occurrence is updated, earlier ones kept")
    func repeatedKey() {
        let result = merged("[s]\nk = a\nother = x\nk = b\n", [("s", "k", "c")])
        #expect(result == "[s]\nk = a\nother = x\nk = c\n")
        #expect(INIDocument(result).value(section: "s", key: "k") == "c")
    }

    @Test("a section split in two blocks is searched in both; new keys go to the last block")
    func splitSection() {
        let text = "[s]\na = 1\n[t]\nx = 1\n[s]\nb = 2\n"
        #expect(merged(text, [("s", "a", "9"), ("s", "c", "3")]) == "[s]\na = 9\n[t]\nx = 1\n[s]\nb = 2\nc = 3\n")
    }

    @Test("continuation lines of an old value are dropped when it is replaced")
    func continuation() {
        let result = merged("[s]\nmulti = one\n  two\n  three\nnext = 1\n", [("s", "multi", "single")])
        #expect(result == "[s]\nmulti = single\nnext = 1\n")
    }

    @Test("new keys copy the separator spelling of the nearest key")
    func separatorStyle() {
        #expect(merged("[s]\na=1\n", [("s", "b", "2")]) == "[s]\na=1\nb=2\n")
        #expect(merged("[s]\na : 1\n", [("s", "b", "2")]) == "[s]\na : 1\nb : 2\n")
        #expect(merged("[s]\na = 1\n", [("s", "b", "")]) == "[s]\na = 1\nb =\n")
    }

    @Test("keys and sections match case-sensitively; ':' separates like '='")
    func matching() {
        let result = merged("[S]\nKey: 1\nkey = 2\n", [("S", "Key", "x"), ("s", "key", "y")])
        #expect(result == "[S]\nKey: x\nkey = 2\n\n[s]\nkey = y\n")
    }

    @Test("CRLF files stay CRLF, and the result ends with a line break")
    func lineEnds() {
        #expect(merged("[s]\r\na = 1\r\n", [("s", "a", "2")]) == "[s]\r\na = 2\r\n")
        #expect(merged("[s]\na = 1", [("s", "b", "2")]) == "[s]\na = 1\nb = 2\n")
    }

    @Test("a byte order mark is kept and does not hide the first section")
    func byteOrderMark() {
        #expect(merged("\u{FEFF}[s]\na = 1\n", [("s", "a", "2")]) == "\u{FEFF}[s]\na = 2\n")
    }

    @Test("unicode and '=' in values are written verbatim")
    func verbatimValues() {
        let result = merged("[s]\n", [("s", "conn", "mysql://u:p=w@h/db?a=b"), ("s", "name", "Málaga ✓")])
        #expect(result == "[s]\nconn = mysql://u:p=w@h/db?a=b\nname = Málaga ✓\n")
        let document = INIDocument(result)
        #expect(document.value(section: "s", key: "conn") == "mysql://u:p=w@h/db?a=b")
    }
}
