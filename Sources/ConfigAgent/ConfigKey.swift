/// The two kinds of node that run OpenStack services in the deployment.
package enum ConfigRole: String, Sendable, Hashable, CaseIterable, Comparable {
    case controller
    case compute

    /// The role a setting names (`ETCD_ROLE`, `--role`); nil for nil or blank.
    package static func named(_ text: String?) throws(ConfigRoleError) -> ConfigRole? {
        guard let text = text?.trimmedWhitespace, !text.isEmpty else { return nil }
        guard let role = ConfigRole(rawValue: text) else { throw ConfigRoleError(value: text) }
        return role
    }

    package static func < (lhs: ConfigRole, rhs: ConfigRole) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}

/// One INI file of one service for one role, e.g. `compute/nova/nova.conf`.
package struct ConfigFileID: Sendable, Hashable, Comparable, CustomStringConvertible {
    package var role: ConfigRole
    package var service: String
    /// The file's name, also the name it is rendered under (`nova.conf`).
    package var file: String

    package init(role: ConfigRole, service: String, file: String) {
        self.role = role
        self.service = service
        self.file = file
    }

    /// Parses `ROLE/SERVICE/FILE`, the form the CLI takes (`compute/nova/nova.conf`).
    package init(path: String) throws(ConfigKeyError) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3 else { throw .badFilePath(path) }
        guard let role = ConfigRole(rawValue: parts[0]) else { throw .badFilePath(path) }
        try ConfigKey.checkPathName(parts[1], what: "service", in: path)
        try ConfigKey.checkPathName(parts[2], what: "file", in: path)
        self.init(role: role, service: parts[1], file: parts[2])
    }

    /// `ROLE/SERVICE/FILE`.
    package var path: String { "\(role.rawValue)/\(service)/\(file)" }
    package var description: String { path }

    package static func < (lhs: ConfigFileID, rhs: ConfigFileID) -> Bool {
        lhs.path.utf8.lexicographicallyPrecedes(rhs.path.utf8)
    }
}

/// One INI setting: a key in a section (or before any section) of one file.
package struct SettingKey: Sendable, Hashable, CustomStringConvertible {
    package var file: ConfigFileID
    /// `nil` for keys before any section header (`ROLE/SERVICE/FILE/KEY`).
    package var section: String?
    package var key: String

    package init(file: ConfigFileID, section: String?, key: String) {
        self.file = file
        self.section = section
        self.key = key
    }

    /// The key's path in the data model, `ROLE/SERVICE/FILE[/SECTION]/KEY`.
    package var path: String {
        if let section { return "\(file.path)/\(section)/\(key)" }
        return "\(file.path)/\(key)"
    }

    package var description: String { path }
}

/// A validated key of the configuration data model.
///
/// - `general/NAME`: an environment variable shared by every service.
/// - `ROLE/NAME` (two parts, NAME in capitals): an environment variable of one role (the
///   launcher's with `ETCD_ROLE=ROLE`), which wins over `general/NAME`, e.g. `compute/CLOUD_INIT_USER_DATA`.
/// - `ROLE/SERVICE/FILE/SECTION/KEY`: a setting of one INI file;
///   `ROLE/SERVICE/FILE/KEY` (four parts) is a key before any section header.
package enum ConfigKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    case general(String)
    case roleVariable(ConfigRole, String)
    case setting(SettingKey)

    /// Parses a key of the data model (the part of a line before its first `=`).
    package init(path raw: String) throws(ConfigKeyError) {
        let parts = raw.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts[0].isEmpty { throw .leadingSlash(raw) }
        if parts[0] == "general" {
            guard parts.count == 2, ConfigKey.isEnvironmentName(parts[1]) else { throw .badGeneralName(raw) }
            self = .general(parts[1])
            return
        }
        guard let role = ConfigRole(rawValue: parts[0]) else { throw .outsideTree(raw) }
        if parts.count == 2 {
            // Capitals only: `compute/nova` is a setting path cut short, not a variable.
            guard ConfigKey.isEnvironmentName(parts[1]), !parts[1].unicodeScalars.contains(where: { ("a"..."z").contains($0) })
            else { throw .badRoleVariableName(raw) }
            self = .roleVariable(role, parts[1])
            return
        }
        guard parts.count == 4 || parts.count == 5 else { throw .badSettingShape(raw) }
        try ConfigKey.checkPathName(parts[1], what: "service", in: raw)
        try ConfigKey.checkPathName(parts[2], what: "file", in: raw)
        let file = ConfigFileID(role: role, service: parts[1], file: parts[2])
        var section: String?
        if parts.count == 5 {
            let name = parts[3]
            if name.isEmpty || name.contains("[") || name.contains("]") || name != name.trimmedWhitespace {
                throw .badSection(raw)
            }
            section = name
        }
        let key = parts[parts.count - 1]
        if key.isEmpty || key.contains(":") || key != key.trimmedWhitespace
            || key.first == "#" || key.first == ";" || key.first == "["
        {
            throw .badINIKey(raw)
        }
        self = .setting(SettingKey(file: file, section: section, key: key))
    }

    /// The key's path relative to the etcd prefix.
    package var path: String {
        switch self {
        case .general(let name): "general/\(name)"
        case .roleVariable(let role, let name): "\(role.rawValue)/\(name)"
        case .setting(let setting): setting.path
        }
    }

    /// The last path component: the variable or INI key name (used for redaction).
    package var name: String {
        switch self {
        case .general(let name), .roleVariable(_, let name): name
        case .setting(let setting): setting.key
        }
    }

    package var description: String { path }

    package static func < (lhs: ConfigKey, rhs: ConfigKey) -> Bool {
        lhs.path.utf8.lexicographicallyPrecedes(rhs.path.utf8)
    }

    /// Whether `name` can be exported by a POSIX shell: `[A-Za-z_][A-Za-z0-9_]*`.
    package static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            return false
        }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
                true
            default:
                false
            }
        }
    }

    static func checkPathName(_ name: String, what: String, in raw: String) throws(ConfigKeyError) {
        if name.isEmpty || name == "." || name == ".." || name != name.trimmedWhitespace
            || name.utf8.contains(0)
        {
            throw .badPathName(raw, what: what)
        }
    }
}

/// `ETCD_ROLE` (or `--role`) names no role.
package struct ConfigRoleError: Error, Sendable, Hashable, CustomStringConvertible {
    package var value: String
    package var description: String {
        "ETCD_ROLE='\(value)' is not a role; use controller or compute (its ROLE/NAME variables in etcd win over general/), or leave it unset"
    }
}

/// Why a key does not fit the data model.
package enum ConfigKeyError: Error, Sendable, Hashable, CustomStringConvertible {
    case leadingSlash(String)
    case badGeneralName(String)
    case badRoleVariableName(String)
    case badSettingShape(String)
    case badPathName(String, what: String)
    case badSection(String)
    case badINIKey(String)
    case badFilePath(String)
    case outsideTree(String)

    package var description: String {
        switch self {
        case .leadingSlash(let key):
            "key '\(key)' starts with '/'; write it without the leading slash (general/…, controller/…, compute/…)"
        case .badGeneralName(let key):
            "key '\(key)' is not general/NAME with NAME made of letters, digits and '_' (not starting with a digit)"
        case .badRoleVariableName(let key):
            "key '\(key)' is neither ROLE/NAME (a role's variable: NAME in capitals, digits and '_', not starting with a digit) nor ROLE/SERVICE/FILE/SECTION/KEY"
        case .badSettingShape(let key):
            "key '\(key)' is not ROLE/SERVICE/FILE/SECTION/KEY (or ROLE/SERVICE/FILE/KEY for a key before any section, ROLE/NAME for a role's variable)"
        case .badPathName(let key, let what):
            "key '\(key)' has an empty or unusable \(what) name (no '.', '..' or surrounding spaces)"
        case .badSection(let key):
            "key '\(key)' has an unusable section name (empty, surrounding spaces, or '[' / ']')"
        case .badINIKey(let key):
            "key '\(key)' has an unusable INI key (empty, surrounding spaces, ':' or a leading '#', ';', '[')"
        case .badFilePath(let path):
            "'\(path)' is not ROLE/SERVICE/FILE with ROLE controller or compute (e.g. compute/nova/nova.conf)"
        case .outsideTree(let key):
            "key '\(key)' is outside the tree: keys start with general/, controller/ or compute/"
        }
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs, CR and LF.
    var trimmedWhitespace: String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.isINIWhitespace }) else { return "" }
        let end = scalars.lastIndex(where: { !$0.isINIWhitespace })!
        return String(scalars[start...end])
    }

    /// The string without trailing spaces and tabs.
    var droppingTrailingBlanks: Substring {
        var end = endIndex
        while end > startIndex {
            let previous = index(before: end)
            guard self[previous] == " " || self[previous] == "\t" else { break }
            end = previous
        }
        return self[startIndex..<end]
    }
}

extension Unicode.Scalar {
    var isINIWhitespace: Bool { self == " " || self == "\t" || self == "\r" || self == "\n" }
}
