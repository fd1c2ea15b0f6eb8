import Foundation

/// Rendered files carried to a guest as cloud-init user data: a `#cloud-config` document whose
/// `write_files` list holds each file's text, guest path, owner and mode (`kvm-launch config user-data`).
///
/// The document is JSON after the `#cloud-config` line (JSON is YAML, which cloud-init and the launcher's
/// user-data check read), so no file text needs YAML quoting. Each file is owned by `root`, group
/// SERVICE (`nova`, `neutron`: the users the Debian packages make), mode `0640`: the files hold passwords.
public struct CloudConfigFiles: Sendable, Hashable {
    /// One file of `write_files`.
    public struct File: Sendable, Hashable {
        public var path: String
        public var content: String
        public var owner: String
        public var permissions: String

        public init(path: String, content: String, owner: String, permissions: String = "0640") {
            self.path = path
            self.content = content
            self.owner = owner
            self.permissions = permissions
        }
    }

    /// Where one rendered etcd file goes in the guest: `ROLE/SERVICE/FILE=GUESTPATH`.
    public struct Target: Sendable, Hashable, CustomStringConvertible {
        public var file: ConfigFileID
        public var guestPath: String

        /// Parses `ROLE/SERVICE/FILE=GUESTPATH`; the guest path is absolute, without `.`/`..` components,
        /// empty components or control characters.
        public init(argument: String) throws(CloudConfigFilesError) {
            let parts = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 else { throw .missingGuestPath(argument) }
            do {
                file = try ConfigFileID(path: parts[0])
            } catch {
                throw .badFile(argument, error)
            }
            let path = parts[1]
            let components = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            guard path.hasPrefix("/"), !components.isEmpty,
                  components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }),
                  !path.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else { throw .badGuestPath(argument) }
            guestPath = path
        }

        public var description: String { "\(file)=\(guestPath)" }
    }

    public var files: [File]

    /// Checks that no guest path is given twice.
    public init(files: [File]) throws(CloudConfigFilesError) {
        var seen = Set<String>()
        for file in files where !seen.insert(file.path).inserted { throw .duplicateGuestPath(file.path) }
        self.files = files
    }

    /// The user data: `#cloud-config`, then `{"write_files": [...]}` with sorted keys (stable bytes for stable text).
    public var userData: String {
        let list: [[String: String]] = files.map {
            ["path": $0.path, "content": $0.content, "owner": $0.owner, "permissions": $0.permissions]
        }
        // Plain strings and arrays of them always serialize.
        let json = try! JSONSerialization.data(
            withJSONObject: ["write_files": list], options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return "#cloud-config\n" + String(decoding: json, as: UTF8.self) + "\n"
    }

    /// Renders every target from `tree` (a new file each: the guest reads it after its packaged defaults).
    public static func render(
        _ targets: [Target], from tree: ConfigTree, with renderer: ConfigRenderer
    ) throws -> CloudConfigFiles {
        let files = try targets.map { target in
            File(path: target.guestPath, content: try renderer.render(target.file, from: tree, into: nil),
                 owner: "root:\(target.file.service)")
        }
        return try CloudConfigFiles(files: files)
    }
}

/// A `ROLE/SERVICE/FILE=GUESTPATH` that cannot be used.
public enum CloudConfigFilesError: Error, Sendable, Hashable, CustomStringConvertible {
    case missingGuestPath(String)
    case badFile(String, ConfigKeyError)
    case badGuestPath(String)
    case duplicateGuestPath(String)

    public var description: String {
        switch self {
        case .missingGuestPath(let argument):
            "\(argument): give the guest path too, ROLE/SERVICE/FILE=GUESTPATH (e.g. compute/nova/nova.conf=/etc/nova/etcd/nova.conf)"
        case .badFile(let argument, let error):
            "\(argument): \(error)"
        case .badGuestPath(let argument):
            "\(argument): the guest path must be absolute, without '.', '..' or empty components and without control characters"
        case .duplicateGuestPath(let path):
            "\(path) is the guest path of two files; give each file its own path"
        }
    }
}
