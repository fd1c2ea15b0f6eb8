import Yams

/// The seed's `user-data`: the operator's cloud-config or `#!` script with the SSH keys merged in.
///
/// Only two formats are accepted, because they are the two kvm-launch can check before anything
/// changes: `#cloud-config` (a YAML mapping; the keys are appended to its `ssh_authorized_keys`)
/// and a `#!` script (with keys, the seed becomes a two-part MIME message: a cloud-config part
/// with the keys, then the script). Comments in a cloud-config are not kept when keys are merged.
package struct UserData: Sendable, Equatable {
    /// The operator's user data as given (`CLOUD_INIT_USER_DATA`), or nil.
    package var text: String?
    /// Public keys for the default user (`SSH_AUTHORIZED_KEYS`), one per entry.
    package var sshAuthorizedKeys: [String]

    package init(text: String?, sshAuthorizedKeys: [String]) {
        self.text = text
        self.sshAuthorizedKeys = sshAuthorizedKeys
    }

    /// Why the user data cannot be used. Never repeats any of its content: it may hold secrets.
    package enum Problem: Error, Equatable, CustomStringConvertible {
        case unsupportedFormat
        case notYAML(line: Int?)
        case notAMapping
        case badKey(line: Int)

        package var description: String {
            switch self {
            case .unsupportedFormat:
                return "CLOUD_INIT_USER_DATA must start with #cloud-config (YAML) or #! (a script)"
            case .notYAML(let line):
                return "CLOUD_INIT_USER_DATA is not valid cloud-config YAML" + (line.map { " (line \($0))" } ?? "")
            case .notAMapping:
                return "CLOUD_INIT_USER_DATA: a #cloud-config must be a YAML mapping (key: value)"
            case .badKey(let line):
                return "SSH_AUTHORIZED_KEYS line \(line) is not a public key (expected TYPE BASE64 [COMMENT], e.g. ssh-ed25519 AAAA… user@host)"
            }
        }
    }

    /// The key types OpenSSH accepts in `authorized_keys`.
    static let keyTypes: Set<String> = [
        "ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
    ]

    /// Splits `SSH_AUTHORIZED_KEYS` (one key per line; blank lines and `#` comments skipped) and checks
    /// each line's shape.
    package static func parseKeys(_ text: String) throws(Problem) -> [String] {
        var keys: [String] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, keyTypes.contains(String(fields[0])), isBase64(fields[1]) else {
                throw .badKey(line: number + 1)
            }
            keys.append(String(line))
        }
        return keys
    }

    /// The `user-data` file's bytes.
    package func render() throws(Problem) -> String {
        guard let text, !text.isEmpty else {
            return Self.cloudConfig(keys: sshAuthorizedKeys)
        }
        if text.hasPrefix("#!") {
            guard !sshAuthorizedKeys.isEmpty else { return text }
            return Self.multipart([
                ("text/cloud-config", "part-001.yaml", Self.cloudConfig(keys: sshAuthorizedKeys)),
                ("text/x-shellscript", "part-002.sh", text),
            ])
        }
        guard text.hasPrefix("#cloud-config") else { throw .unsupportedFormat }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw .notYAML(line: Self.line(of: error))
        } catch {
            throw .notYAML(line: nil)
        }
        guard var mapping = node?.mapping ?? (node == nil || node?.null != nil ? Node.Mapping([]) : nil) else {
            throw .notAMapping
        }
        guard !sshAuthorizedKeys.isEmpty else { return text }
        var existing = mapping["ssh_authorized_keys"]?.sequence ?? Node.Sequence([])
        let present = Set(existing.compactMap(\.string))
        for key in sshAuthorizedKeys where !present.contains(key) {
            existing.append(Node(key, Tag(.str), .doubleQuoted))
        }
        mapping["ssh_authorized_keys"] = Node.sequence(existing)
        do {
            return "#cloud-config\n" + (try Yams.serialize(node: Node.mapping(mapping)))
        } catch {
            throw .notYAML(line: nil)
        }
    }

    static func cloudConfig(keys: [String]) -> String {
        guard !keys.isEmpty else { return "#cloud-config\n{}\n" }
        return "#cloud-config\nssh_authorized_keys:\n" + keys.map { "  - \"\($0)\"\n" }.joined()
    }

    /// A MIME multipart message as cloud-init reads it; the boundary cannot occur in the parts.
    static func multipart(_ parts: [(type: String, filename: String, body: String)]) -> String {
        var boundary = "==kvm-launch-seed"
        while parts.contains(where: { $0.body.contains(boundary) }) { boundary += "=" }
        var message = "Content-Type: multipart/mixed; boundary=\"\(boundary)\"\nMIME-Version: 1.0\n\n"
        for part in parts {
            message += "--\(boundary)\nContent-Type: \(part.type); charset=\"us-ascii\"\nMIME-Version: 1.0\n"
            message += "Content-Transfer-Encoding: 7bit\nContent-Disposition: attachment; filename=\"\(part.filename)\"\n\n"
            message += part.body + (part.body.hasSuffix("\n") ? "" : "\n")
        }
        return message + "--\(boundary)--\n"
    }

    private static func isBase64(_ text: Substring) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { byte in
            (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=")
        }
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var text = self
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return text
    }
}
