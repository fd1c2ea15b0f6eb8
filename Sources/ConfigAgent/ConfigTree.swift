#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// One value of the tree in INI terms: its section (nil before any header), key and value.
package struct INISetting: Sendable, Hashable {
    package var section: String?
    package var key: String
    package var value: String

    package init(section: String?, key: String, value: String) {
        self.section = section
        self.key = key
        self.value = value
    }
}

/// The whole configuration: general variables and per-file INI settings.
///
/// This is what a load writes under the etcd prefix (key `PREFIX/PATH`, value
/// verbatim) and what render, env and watch read back.
package struct ConfigTree: Sendable, Hashable {
    /// Every value by key.
    package private(set) var values: [ConfigKey: String] = [:]

    package init() {}

    package init(values: [ConfigKey: String]) {
        self.values = values
    }

    package subscript(key: ConfigKey) -> String? {
        get { values[key] }
        set { values[key] = newValue }
    }

    /// The `general/` variables by name.
    package var general: [String: String] {
        var result: [String: String] = [:]
        for (key, value) in values {
            if case .general(let name) = key { result[name] = value }
        }
        return result
    }

    /// The variables of `role` (`ROLE/NAME`) by name.
    package func variables(of role: ConfigRole) -> [String: String] {
        var result: [String: String] = [:]
        for (key, value) in values {
            if case .roleVariable(role, let name) = key { result[name] = value }
        }
        return result
    }

    /// The environment of `role`: `general/` with the role's own variables winning; `general/` alone for nil.
    package func environment(role: ConfigRole?) -> [String: String] {
        guard let role else { return general }
        return general.merging(variables(of: role)) { _, roleValue in roleValue }
    }

    /// Every file with at least one setting, sorted.
    package var files: [ConfigFileID] {
        var seen = Set<ConfigFileID>()
        for key in values.keys {
            if case .setting(let setting) = key { seen.insert(setting.file) }
        }
        return seen.sorted()
    }

    /// The settings of one file in the order render adds them: keys before any
    /// section first, then `[DEFAULT]`, then the other sections by name; keys by name.
    package func settings(of file: ConfigFileID) -> [INISetting] {
        var result: [INISetting] = []
        for (key, value) in values {
            if case .setting(let setting) = key, setting.file == file {
                result.append(INISetting(section: setting.section, key: setting.key, value: value))
            }
        }
        func rank(_ section: String?) -> Int {
            switch section {
            case nil: 0
            case "DEFAULT": 1
            default: 2
            }
        }
        return result.sorted { lhs, rhs in
            if rank(lhs.section) != rank(rhs.section) { return rank(lhs.section) < rank(rhs.section) }
            if lhs.section != rhs.section { return (lhs.section ?? "").utf8.lexicographicallyPrecedes((rhs.section ?? "").utf8) }
            return lhs.key.utf8.lexicographicallyPrecedes(rhs.key.utf8)
        }
    }

    /// How many keys the tree holds: general variables and settings per role.
    package struct Counts: Sendable, Hashable, CustomStringConvertible {
        package var general = 0
        package var settings: [ConfigRole: Int] = [:]
        package var files: [ConfigRole: Int] = [:]
        /// `ROLE/NAME` variables per role.
        package var variables: [ConfigRole: Int] = [:]

        package var total: Int { general + settings.values.reduce(0, +) + variables.values.reduce(0, +) }

        package var description: String {
            var parts = ["general: \(general) variables"]
            for role in ConfigRole.allCases {
                let own = variables[role, default: 0]
                parts.append("\(role.rawValue): \(settings[role, default: 0]) settings in \(files[role, default: 0]) files"
                             + (own == 0 ? "" : " and \(own) variables"))
            }
            return parts.joined(separator: ", ")
        }
    }

    package var counts: Counts {
        var counts = Counts()
        var files = Set<ConfigFileID>()
        for key in values.keys {
            switch key {
            case .general: counts.general += 1
            case .roleVariable(let role, _): counts.variables[role, default: 0] += 1
            case .setting(let setting):
                counts.settings[setting.file.role, default: 0] += 1
                files.insert(setting.file)
            }
        }
        for file in files { counts.files[file.role, default: 0] += 1 }
        return counts
    }
}

// MARK: - Reading the operator's files

extension ConfigTree {
    /// Everything that stops a load: every bad line of every file.
    package struct InputErrors: Error, Sendable, Hashable, CustomStringConvertible {
        package var errors: [ConfigInputError]

        package var description: String {
            let first = errors.first.map(\.description) ?? "no input"
            return errors.count == 1
                ? "\(first); nothing was loaded"
                : "\(errors.count) bad lines, first \(first); nothing was loaded"
        }
    }

    /// The files a load reads: regular files given directly, and every regular
    /// file below a given directory (recursively, sorted by path, hidden names skipped).
    package static func inputFiles(_ paths: [String]) throws(InputErrors) -> [String] {
        var files: [String] = []
        var errors: [ConfigInputError] = []
        for path in paths {
            switch FileKind(path) {
            case .missing:
                errors.append(ConfigInputError(SourceLocation(file: path, line: 0), .unreadable("no such file or directory")))
            case .other:
                files.append(path)
            case .directory:
                guard let found = regularFiles(below: path) else {
                    errors.append(ConfigInputError(SourceLocation(file: path, line: 0), .unreadable("cannot list directory")))
                    continue
                }
                files += found.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            }
        }
        if !errors.isEmpty { throw InputErrors(errors: errors) }
        return files
    }

    /// What a path names, symbolic links followed.
    private enum FileKind {
        case missing, directory, other

        init(_ path: String) {
            var info = stat()
            guard stat(path, &info) == 0 else {
                self = .missing
                return
            }
            self = (info.st_mode & S_IFMT) == S_IFDIR ? .directory : .other
        }
    }

    /// Every file below `directory` that is not a directory, recursively, hidden names (and what is below
    /// them) skipped; symbolic links to directories are not followed. Nil if `directory` cannot be listed.
    private static func regularFiles(below directory: String) -> [String]? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        var found: [String] = []
        for name in names where !name.hasPrefix(".") {
            let full = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            var info = stat()
            guard lstat(full, &info) == 0 else { continue }
            if (info.st_mode & S_IFMT) == S_IFDIR {
                found += regularFiles(below: full) ?? []
            } else if case .other = FileKind(full) {
                found.append(full)
            }
        }
        return found
    }

    /// Reads and validates every file first; returns the tree only if no line is bad.
    ///
    /// Later lines win over earlier ones for the same key (files in the order of
    /// ``inputFiles(_:)``); a different earlier value gives an ``ConfigNotice/overridden(_:key:previous:)`` notice.
    package static func read(
        paths: [String],
        options: KeyValueFile.Options = KeyValueFile.Options()
    ) throws(InputErrors) -> (tree: ConfigTree, notices: [ConfigNotice]) {
        let files = try inputFiles(paths)
        var errors: [ConfigInputError] = []
        var parsedFiles: [KeyValueFile.Parsed] = []
        for file in files {
            let location = SourceLocation(file: file, line: 0)
            guard let data = FileManager.default.contents(atPath: file) else {
                errors.append(ConfigInputError(location, .unreadable("permission denied or not a regular file")))
                continue
            }
            guard var text = String(data: data, encoding: .utf8) else {
                errors.append(ConfigInputError(location, .notUTF8))
                continue
            }
            if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
            let parsed = KeyValueFile.parse(text, file: file, options: options)
            errors += parsed.errors
            parsedFiles.append(parsed)
        }
        if !errors.isEmpty { throw InputErrors(errors: errors) }
        return merge(parsedFiles)
    }

    /// Combines parsed files in order (later wins), reporting overridden values.
    package static func merge(_ parsedFiles: [KeyValueFile.Parsed]) -> (tree: ConfigTree, notices: [ConfigNotice]) {
        var tree = ConfigTree()
        var origin: [ConfigKey: SourceLocation] = [:]
        var notices: [ConfigNotice] = []
        for parsed in parsedFiles {
            notices += parsed.notices
            for entry in parsed.entries {
                if let previous = tree[entry.key], previous != entry.value, let where_ = origin[entry.key] {
                    notices.append(.overridden(entry.location, key: entry.key.path, previous: where_))
                }
                tree[entry.key] = entry.value
                origin[entry.key] = entry.location
            }
        }
        return (tree, notices)
    }
}
