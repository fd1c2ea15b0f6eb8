import Foundation
import TestSupport
import Testing

@testable import ConfigAgent

@Suite("variable substitution")
struct VariableSubstitutionTests {
    let variables = ["NOVA_DB_PASSWORD": "s3cr=t$x", "MYSQL_HOST": "db.svc", "HOSTNAME": "compute-1", "EMPTY": ""]

    @Test("NAME and {NAME} references are replaced; values are inserted verbatim without a second round")
    func expands() throws {
        let value = try VariableSubstitution.expand("mysql://nova:$NOVA_DB_PASSWORD@$MYSQL_HOST/nova", variables: variables)
        #expect(value == "mysql://nova:s3cr=t$x@db.svc/nova")
        #expect(try VariableSubstitution.expand("${HOSTNAME}_suffix [$EMPTY]", variables: variables) == "compute-1_suffix []")
    }

    @Test("a doubled dollar is a literal dollar; a dollar before anything else stays")
    func literalDollar() throws {
        #expect(try VariableSubstitution.expand("pa$$word costs 5$ or $1 $", variables: [:]) == "pa$word costs 5$ or $1 $")
    }

    @Test("an unknown variable is an error that names it, unless kept on request")
    func unknown() throws {
        #expect(throws: VariableError.unknown("HOSTNAME")) {
            try VariableSubstitution.expand("bind_ip=$HOSTNAME", variables: [:])
        }
        let kept = try VariableSubstitution.expand("$state_path/x ${NOPE}", variables: [:], unknown: .keep)
        #expect(kept == "$state_path/x ${NOPE}")
    }

    @Test("a malformed brace reference is an error", arguments: ["${", "${}", "${A-B}", "x ${OPEN"])
    func malformed(text: String) {
        #expect(throws: VariableError.self) { try VariableSubstitution.expand(text, variables: ["A": "1"]) }
    }

    @Test("references lists the names a value uses")
    func references() {
        #expect(VariableSubstitution.references(in: "$A ${B} $$C $A x$") == ["A", "B"])
    }
}

@Suite("environment: precedence, export, redaction")
struct EnvironmentTests {
    @Test("the container's environment wins over etcd's general/")
    func precedence() {
        let merged = EnvironmentPrecedence.merge(
            general: ["AUTO_ATTACH": "yes", "SELECTED_NETWORK": "10.42.0.0/16"],
            container: ["AUTO_ATTACH": "no", "PATH": "/bin"]
        )
        #expect(merged == ["AUTO_ATTACH": "no", "SELECTED_NETWORK": "10.42.0.0/16", "PATH": "/bin"])
    }

    @Test("export lines read back by bash give exactly the original values")
    func bashRoundTrip() throws {
        let variables = [
            "QUOTES": #"it's "quoted" and 'single'"#,
            "SPACES": "  two  spaces  and\ttab  ",
            "DOLLAR": "$HOME ${PATH} $(echo no) `echo no` $$",
            "BACKSLASH": #"a\nb\\c\"#,
            "UNICODE": "¡señal! 世界 🚀",
            "EMPTY": "",
            "EQUALS": "a=b==",
            "NEWLINE": "line1\nline2",
            "GLOB": "* ? [a-z] ~",
        ]
        let script = EnvironmentExport.shellLines(variables).joined(separator: "\n")
        // Evaluate the lines, then print each variable NUL-terminated so nothing is lost.
        let names = variables.keys.sorted()
        let printer = names.map { "printf '%s\\0' \"$\($0)\"" }.joined(separator: "; ")
        let result = try run(["/bin/bash", "-c", "eval \"$(cat)\"; \(printer)"], environment: ["PATH": "/usr/bin:/bin"], input: script, check: false)
        #expect(result.status == 0, "\(result.stderr)")
        let values = result.stdout.split(separator: "\0", omittingEmptySubsequences: false).dropLast().map(String.init)
        #expect(values == names.map { variables[$0]! })
    }

    @Test("export lines are sorted and single-quoted")
    func exportShape() {
        #expect(EnvironmentExport.shellLines(["B": "x'y", "A": "1"]) == ["export A='1'", #"export B='x'\''y'"#])
    }

    @Test("JSON output decodes to the same variables")
    func json() throws {
        let variables = ["A": "1 \"2\" ñ/", "B": ""]
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(EnvironmentExport.json(variables).utf8))
        #expect(decoded == variables)
    }

    @Test("names containing PASSWORD, SECRET, TOKEN or KEY are secret, in any case")
    func redaction() {
        for name in ["NOVA_PASSWORD", "metadata_proxy_shared_secret", "ADMIN_TOKEN", "auth_key", "password"] {
            #expect(Redaction.isSecret(name), "\(name)")
            #expect(Redaction.display("hunter2", name: name) == "<redacted>")
        }
        for name in ["MYSQL_HOST", "my_ip", "SELECTED_NETWORK"] {
            #expect(!Redaction.isSecret(name), "\(name)")
            #expect(Redaction.display("10.0.0.1", name: name) == "10.0.0.1")
        }
    }
}

@Suite("etcd settings from the environment")
struct EtcdSettingsTests {
    @Test("no ETCD_ENDPOINTS means no etcd")
    func absent() throws {
        #expect(try EtcdSettings.fromEnvironment([:]) == nil)
        #expect(try EtcdSettings.fromEnvironment(["ETCD_ENDPOINTS": "  "]) == nil)
    }

    @Test("every variable is read")
    func full() throws {
        let settings = try #require(
            try EtcdSettings.fromEnvironment([
                "ETCD_ENDPOINTS": "http://127.0.0.1:2379, https://etcd.svc:2379,https://[::1]",
                "ETCD_PREFIX": "/cloud",
                "ETCD_CACERT": "/ca.pem", "ETCD_CERT": "/c.pem", "ETCD_KEY": "/k.pem",
                "ETCD_USER": "agent", "ETCD_PASSWORD": "pw",
                "ETCD_TIMEOUT": "2.5", "ETCD_MAX_TXN_OPS": "1000",
            ])
        )
        #expect(settings.endpoints.map(\.url) == ["http://127.0.0.1:2379", "https://etcd.svc:2379", "https://[::1]:2379"])
        #expect(settings.prefix == "/cloud")
        #expect(settings.tls == .init(caFile: "/ca.pem", certificateFile: "/c.pem", keyFile: "/k.pem"))
        #expect(settings.credentials == .init(user: "agent", password: "pw"))
        #expect(settings.requestTimeout == .milliseconds(2500))
        #expect(settings.maxTxnOperations == 1000)
        #expect(!"\(settings.credentials!)".contains("pw"))
    }

    @Test("defaults: prefix /openstack-k8s, 128 operations per transaction level")
    func defaults() throws {
        let settings = try #require(try EtcdSettings.fromEnvironment(["ETCD_ENDPOINTS": "http://e:2379"]))
        #expect(settings.prefix == "/openstack-k8s")
        #expect(settings.maxTxnOperations == 128)
        #expect(settings.credentials == nil)
    }

    @Test(
        "unusable settings are rejected",
        arguments: [
            ["ETCD_ENDPOINTS": "127.0.0.1:2379"],
            ["ETCD_ENDPOINTS": "http://h:99999"],
            ["ETCD_ENDPOINTS": "http://h:2379/v2/keys"],
            ["ETCD_ENDPOINTS": "http://h", "ETCD_PREFIX": "openstack"],
            ["ETCD_ENDPOINTS": "http://h", "ETCD_PREFIX": "/"],
            ["ETCD_ENDPOINTS": "http://h", "ETCD_PREFIX": "/a/"],
            ["ETCD_ENDPOINTS": "http://h", "ETCD_CERT": "/c.pem"],
            ["ETCD_ENDPOINTS": "http://h", "ETCD_PASSWORD": "pw"],
            ["ETCD_ENDPOINTS": "http://h", "ETCD_TIMEOUT": "soon"],
        ]
    )
    func rejected(environment: [String: String]) {
        let error = #expect(throws: EtcdSettingsError.self) { try EtcdSettings.fromEnvironment(environment) }
        #expect(error.map { !"\($0)".contains("pw") } ?? false)
    }
}

@Suite("transaction layout")
struct TransactionLayoutTests {
    private func puts(_ count: Int) -> [EtcdOperation] {
        (0..<count).map { .put(key: Array("k\($0)".utf8), value: []) }
    }

    @Test("operations that fit one level stay flat")
    func flat() throws {
        let operations = puts(128)
        #expect(try TransactionLayout.nest(operations, maxOperations: 128) == operations)
    }

    @Test("more operations are nested so every level fits etcd's budget, order kept", arguments: [129, 361, 4096, 4097, 20001])
    func nested(count: Int) throws {
        let operations = puts(count)
        let nested = try TransactionLayout.nest(operations, maxOperations: 128)
        #expect(TransactionLayout.fits(nested, conditions: 1, maxOperations: 128))
        #expect(!TransactionLayout.fits(operations, conditions: 1, maxOperations: 128))
        func flatten(_ list: [EtcdOperation]) -> [EtcdOperation] {
            list.flatMap { if case .transaction(let inner) = $0 { flatten(inner) } else { [$0] } }
        }
        #expect(flatten(nested) == operations)
    }

    @Test("fits follows etcd's rule: a nested level gets what its parent left")
    func fitsRule() {
        let twentyOfHundred: [EtcdOperation] = (0..<20).map { _ in .transaction(puts(100)) }
        let fiftyOfHundred: [EtcdOperation] = (0..<50).map { _ in .transaction(puts(100)) }
        #expect(TransactionLayout.fits(twentyOfHundred, maxOperations: 128))
        #expect(!TransactionLayout.fits(fiftyOfHundred, maxOperations: 128))
    }

    @Test("too many operations for any depth is an error")
    func tooMany() {
        #expect(throws: TransactionLayoutError.self) { try TransactionLayout.nest(puts(100), maxOperations: 4) }
    }
}
