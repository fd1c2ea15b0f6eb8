/// Produces one service's INI file from the tree.
///
/// For each setting of the file, `$NAME` / `${NAME}` references in the value are
/// expanded (``VariableSubstitution``) and the result is merged into the
/// existing file (``INIDocument``). Only values from etcd are expanded: text
/// already in the file (such as oslo.config's own `$state_path` references) is
/// left alone.
package struct ConfigRenderer: Sendable {
    /// The names `$NAME` resolves against.
    package var variables: [String: String]
    package var unknownVariables: VariableSubstitution.UnknownPolicy

    /// Variables are the tree's `general/` variables with the container's
    /// environment taking precedence (``EnvironmentPrecedence``). Pass an empty
    /// environment to use etcd only.
    package init(
        general: [String: String],
        environment: [String: String],
        unknownVariables: VariableSubstitution.UnknownPolicy = .fail
    ) {
        variables = EnvironmentPrecedence.merge(general: general, container: environment)
        self.unknownVariables = unknownVariables
    }

    /// The file's text after merging `tree`'s settings into `existing` (nil: a new file).
    package func render(_ file: ConfigFileID, from tree: ConfigTree, into existing: String?) throws(RenderError) -> String {
        let settings = tree.settings(of: file)
        guard !settings.isEmpty else { throw .noSettings(file) }
        var document = INIDocument(existing ?? "")
        for setting in settings {
            let key = SettingKey(file: file, section: setting.section, key: setting.key)
            let value: String
            do {
                value = try VariableSubstitution.expand(setting.value, variables: variables, unknown: unknownVariables)
            } catch {
                // What follows a `$` in a secret's value may be part of the secret: name the key, not the text.
                if Redaction.isSecret(setting.key) { throw .secretValue(key, RenderError.SecretProblem(error)) }
                throw .variable(key, error)
            }
            if value.contains("\n") || value.contains("\r") { throw .lineBreak(key) }
            document.set(section: setting.section, key: setting.key, value: value)
        }
        return document.text
    }

    /// What happened to a file on disk.
    package enum Outcome: String, Sendable, Hashable {
        case created
        case updated
        case unchanged
    }

    /// Renders `file` into `directory/FILE`, replacing it atomically only if its text changes.
    @discardableResult
    package func write(_ file: ConfigFileID, from tree: ConfigTree, into directory: String) throws -> Outcome {
        let path = (directory.hasSuffix("/") ? directory : directory + "/") + file.file
        let existing = try AtomicFile.read(path)
        let text = try render(file, from: tree, into: existing)
        if text == existing { return .unchanged }
        try AtomicFile.write(text, to: path)
        return existing == nil ? .created : .updated
    }
}

/// A file that cannot be rendered.
package enum RenderError: Error, Sendable, Hashable, CustomStringConvertible {
    /// etcd has no setting for the file (a typo in ROLE/SERVICE/FILE?).
    case noSettings(ConfigFileID)
    case variable(SettingKey, VariableError)
    /// A reference in the value of a secret key (``Redaction``) cannot be expanded; no part
    /// of the value is kept, so none can reach an error message or a log.
    case secretValue(SettingKey, SecretProblem)
    /// An INI value cannot span lines.
    case lineBreak(SettingKey)

    /// What is wrong with a secret value, without any of its text.
    package enum SecretProblem: Sendable, Hashable {
        case unknownVariable
        case malformedReference

        init(_ error: VariableError) {
            switch error {
            case .unknown: self = .unknownVariable
            case .malformed: self = .malformedReference
            }
        }
    }

    package var description: String {
        switch self {
        case .secretValue(let key, .unknownVariable):
            "\(key): the value refers to a variable that has no value (the value is not shown: the key holds a secret);"
                + " define the variable in general/ or the environment, write $$ for a literal '$',"
                + " or allow unknown variables (--allow-unknown-variables)"
        case .secretValue(let key, .malformedReference):
            "\(key): the value has a malformed ${…} reference (the value is not shown: the key holds a secret);"
                + " write ${NAME} with NAME of letters, digits and '_', or $$ for a literal '$'"
        case .noSettings(let file):
            "etcd has no settings for \(file); check the name (ROLE/SERVICE/FILE) and that the tree was loaded"
        case .variable(let key, .unknown(let name)):
            "\(key): unknown variable $\(name); define general/\(name), set it in the environment,"
                + " or allow unknown variables (--allow-unknown-variables)"
        case .variable(let key, let error):
            "\(key): \(error)"
        case .lineBreak(let key):
            "\(key): the value contains a line break, which an INI file cannot hold"
        }
    }
}
