#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The one precedence rule between the container's environment and etcd's `general/`.
///
/// **The container's environment wins**: a variable set with `docker run -e`
/// (or a Kubernetes `env:` entry) overrides the same name from etcd, and names
/// only etcd has are added. The launcher's settings and `$NAME` references in
/// rendered files both use this rule.
package enum EnvironmentPrecedence {
    /// `general` with every name from `container` overriding it.
    package static func merge(general: [String: String], container: [String: String]) -> [String: String] {
        general.merging(container) { _, containerValue in containerValue }
    }
}

/// Shell and JSON forms of the `general/` variables.
package enum EnvironmentExport {
    /// `export NAME='value'` lines, sorted by name, that any POSIX shell reads back
    /// unchanged: the value is single-quoted, each `'` written as `'\''`.
    ///
    /// Names that are not shell names are skipped (a load never writes them).
    package static func shellLines(_ variables: [String: String]) -> [String] {
        variables.keys.sorted().compactMap { name in
            guard ConfigKey.isEnvironmentName(name), let value = variables[name] else { return nil }
            return "export \(name)=\(singleQuoted(value))"
        }
    }

    /// `value` as one single-quoted shell word.
    package static func singleQuoted(_ value: String) -> String {
        "'" + value.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    /// A JSON object of the variables, keys sorted.
    package static func json(_ variables: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        // Encoding a [String: String] cannot fail.
        let data = (try? encoder.encode(variables)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

/// Hides values that look secret before they reach a log or an error message.
package enum Redaction {
    /// Name fragments (case-insensitive) that mark a value as secret.
    package static let markers = ["PASSWORD", "SECRET", "TOKEN", "KEY"]

    /// Whether a variable or INI key called `name` holds a secret (`NOVA_PASSWORD`,
    /// `metadata_proxy_shared_secret`, `ADMIN_TOKEN`, …). For a path, pass its last component.
    package static func isSecret(_ name: String) -> Bool {
        let upper = name.uppercased()
        return markers.contains { upper.contains($0) }
    }

    /// `value`, or `<redacted>` when `name` marks it secret.
    package static func display(_ value: String, name: String) -> String {
        isSecret(name) ? "<redacted>" : value
    }
}
