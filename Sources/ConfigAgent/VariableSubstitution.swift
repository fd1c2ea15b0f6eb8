/// Expansion of `$NAME` and `${NAME}` references in setting values.
///
/// Syntax: `NAME` is `[A-Za-z_][A-Za-z0-9_]*`, `$NAME` takes the longest such
/// name, `$$` is a literal `$`, and a `$` not followed by a name, `{` or `$` is
/// kept as is (`price: 5$`). A `${` without a valid name and `}` is an error.
/// Substituted values are inserted verbatim: there is no second round.
package enum VariableSubstitution {
    /// What to do with a reference to a name that has no value.
    package enum UnknownPolicy: Sendable, Hashable {
        /// Throw ``VariableError/unknown(_:)``.
        case fail
        /// Leave the reference as written (for programs that expand it themselves).
        case keep
    }

    /// Expands the references in `text`.
    package static func expand(
        _ text: String,
        variables: [String: String],
        unknown: UnknownPolicy = .fail
    ) throws(VariableError) -> String {
        guard text.contains("$") else { return text }
        let chars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var index = 0
        while index < chars.count {
            let char = chars[index]
            guard char == "$", index + 1 < chars.count else {
                out.append(char)
                index += 1
                continue
            }
            let next = chars[index + 1]
            if next == "$" {
                out.append("$")
                index += 2
            } else if next == "{" {
                var end = index + 2
                while end < chars.count, chars[end] != "}" { end += 1 }
                let name = String(String.UnicodeScalarView(chars[(index + 2)..<min(end, chars.count)]))
                guard end < chars.count, ConfigKey.isEnvironmentName(name) else {
                    throw .malformed(String(String.UnicodeScalarView(chars[index..<min(end + 1, chars.count)])))
                }
                let original = String(String.UnicodeScalarView(chars[index...end]))
                out.append(contentsOf: try resolve(name, original: original, variables, unknown).unicodeScalars)
                index = end + 1
            } else if next.isNameStart {
                var end = index + 2
                while end < chars.count, chars[end].isNameContinuation { end += 1 }
                let name = String(String.UnicodeScalarView(chars[(index + 1)..<end]))
                out.append(contentsOf: try resolve(name, original: "$" + name, variables, unknown).unicodeScalars)
                index = end
            } else {
                out.append(char)
                index += 1
            }
        }
        return String(out)
    }

    /// The names `text` refers to, in order of appearance (duplicates removed).
    package static func references(in text: String) -> [String] {
        var names: [String] = []
        var seen = Set<String>()
        let chars = Array(text.unicodeScalars)
        var index = 0
        while index + 1 < chars.count {
            guard chars[index] == "$" else { index += 1; continue }
            let next = chars[index + 1]
            var name = ""
            if next == "$" {
                index += 2
                continue
            } else if next == "{" {
                var end = index + 2
                while end < chars.count, chars[end] != "}" { end += 1 }
                if end < chars.count { name = String(String.UnicodeScalarView(chars[(index + 2)..<end])) }
                index = end + 1
            } else if next.isNameStart {
                var end = index + 2
                while end < chars.count, chars[end].isNameContinuation { end += 1 }
                name = String(String.UnicodeScalarView(chars[(index + 1)..<end]))
                index = end
            } else {
                index += 1
                continue
            }
            if ConfigKey.isEnvironmentName(name), seen.insert(name).inserted { names.append(name) }
        }
        return names
    }

    private static func resolve(
        _ name: String,
        original: String,
        _ variables: [String: String],
        _ unknown: UnknownPolicy
    ) throws(VariableError) -> String {
        if let value = variables[name] { return value }
        switch unknown {
        case .fail: throw .unknown(name)
        case .keep: return original
        }
    }
}

/// A reference that cannot be expanded.
package enum VariableError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No variable of that name exists.
    case unknown(String)
    /// A `${` without a valid name and closing `}`.
    case malformed(String)

    package var description: String {
        switch self {
        case .unknown(let name):
            "unknown variable $\(name); define general/\(name) or allow unknown variables"
        case .malformed(let text):
            "malformed reference '\(text)'; write ${NAME} with NAME of letters, digits and '_', or $$ for a literal '$'"
        }
    }
}

extension Unicode.Scalar {
    fileprivate var isNameStart: Bool {
        ("A"..."Z").contains(self) || ("a"..."z").contains(self) || self == "_"
    }

    fileprivate var isNameContinuation: Bool {
        isNameStart || ("0"..."9").contains(self)
    }
}
