#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Rendered files carried to a guest as cloud-init user data: a `#cloud-config` document whose
/// `write_files` list holds each file's text, guest path, owner and mode (`kvm-launch config user-data`).
///
/// The document is JSON after the `#cloud-config` line (JSON is YAML, which cloud-init and the launcher's
/// user-data check read), so no file text needs YAML quoting. Each file is owned by `root`, group
/// SERVICE (`nova`, `neutron`: the users the Debian packages make), mode `0640`: the files hold passwords.
package struct CloudConfigFiles: Sendable, Hashable {
    /// One file of `write_files`.
    package struct File: Sendable, Hashable {
        package var path: String
        package var content: String
        package var owner: String
        package var permissions: String

        package init(path: String, content: String, owner: String, permissions: String = "0640") {
            self.path = path
            self.content = content
            self.owner = owner
            self.permissions = permissions
        }
    }

    /// Where one rendered etcd file goes in the guest: `ROLE/SERVICE/FILE=GUESTPATH`.
    package struct Target: Sendable, Hashable, CustomStringConvertible {
        package var file: ConfigFileID
        package var guestPath: String

        /// Parses `ROLE/SERVICE/FILE=GUESTPATH`; the guest path is absolute, without `.`/`..` components,
        /// empty components or control characters.
        package init(argument: String) throws(CloudConfigFilesError) {
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

        package var description: String { "\(file)=\(guestPath)" }
    }

    package var files: [File]

    /// Checks that no guest path is given twice.
    package init(files: [File]) throws(CloudConfigFilesError) {
        var seen = Set<String>()
        for file in files where !seen.insert(file.path).inserted { throw .duplicateGuestPath(file.path) }
        self.files = files
    }

    /// The user data: `#cloud-config`, then `{"write_files": [...]}` with sorted keys (stable bytes for stable text).
    package var userData: String {
        let list: [[String: String]] = files.map {
            ["path": $0.path, "content": $0.content, "owner": $0.owner, "permissions": $0.permissions]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Plain strings and arrays of them always encode.
        let json = try! encoder.encode(["write_files": list])
        return "#cloud-config\n" + String(decoding: json, as: UTF8.self) + "\n"
    }

    /// Renders every target from `tree` (a new file each: the guest reads it after its packaged defaults).
    package static func render(
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
package enum CloudConfigFilesError: Error, Sendable, Hashable, CustomStringConvertible {
    case missingGuestPath(String)
    case badFile(String, ConfigKeyError)
    case badGuestPath(String)
    case duplicateGuestPath(String)

    package var description: String {
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
