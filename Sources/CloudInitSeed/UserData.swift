import CYAML

/// The seed's `user-data`: the operator's cloud-config or `#!` script with the SSH keys merged in.
///
/// Only two formats are accepted, because they are the two kvm-launch can check before anything
/// changes: `#cloud-config` (a YAML mapping, parsed with libyaml; the keys are appended to its `ssh_authorized_keys`)
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
        var stream: YAMLEvents
        do {
            stream = try YAMLEvents.parse(text)
        } catch {
            throw .notYAML(line: error.line)
        }
        let root = try Self.root(of: stream)
        guard !sshAuthorizedKeys.isEmpty else { return text }
        stream.events = Self.merging(keys: sshAuthorizedKeys, into: stream, root: root)
        do {
            return "#cloud-config\n" + (try stream.emit())
        } catch {
            throw .notYAML(line: nil)
        }
    }

    /// Where the document's root mapping starts in `stream`, or nil for an empty document (nothing, or
    /// a null): one document whose root is a mapping, else the problem.
    private static func root(of stream: YAMLEvents) throws(Problem) -> Int? {
        let events = stream.events
        guard events.first == .documentStart else { return nil }
        let end = stream.endOfNode(at: 1)
        if end + 1 < events.count { throw .notYAML(line: nil) }  // a second document: cloud-init reads one
        switch events[1] {
        case .mappingStart:
            return 1
        case .scalar(_, let tag, let value, _, _, let style):
            let null = tag == "tag:yaml.org,2002:null"
                || (tag == nil && style == YAML_PLAIN_SCALAR_STYLE && ["", "~", "null", "Null", "NULL"].contains(value))
            guard null else { throw .notAMapping }
            return nil
        default:
            throw .notAMapping
        }
    }

    /// The events with `keys` appended to the root mapping's `ssh_authorized_keys` (keys already there
    /// kept once); a value there that is not a sequence is replaced; a missing entry is added last.
    private static func merging(keys: [String], into stream: YAMLEvents, root: Int?) -> [YAMLEvents.Event] {
        func keyScalar(_ text: String) -> YAMLEvents.Event {
            .scalar(anchor: nil, tag: nil, value: text, plainImplicit: false, quotedImplicit: true, style: YAML_DOUBLE_QUOTED_SCALAR_STYLE)
        }
        func newSequence(_ keys: [String]) -> [YAMLEvents.Event] {
            [.sequenceStart(anchor: nil, tag: nil, implicit: true, style: YAML_ANY_SEQUENCE_STYLE)] + keys.map(keyScalar) + [.sequenceEnd]
        }
        let entryName = YAMLEvents.Event.scalar(anchor: nil, tag: nil, value: "ssh_authorized_keys", plainImplicit: true,
                                                 quotedImplicit: false, style: YAML_ANY_SCALAR_STYLE)
        let events = stream.events
        guard let root else {
            return [.documentStart, .mappingStart(anchor: nil, tag: nil, implicit: true, style: YAML_ANY_MAPPING_STYLE), entryName]
                + newSequence(keys) + [.mappingEnd, .documentEnd]
        }
        let rootEnd = stream.endOfNode(at: root) - 1
        var position = root + 1
        while position < rootEnd {
            let valueStart = stream.endOfNode(at: position)
            let valueEnd = stream.endOfNode(at: valueStart)
            if case .scalar(_, let tag, "ssh_authorized_keys", _, _, _) = events[position], tag == nil || tag == "tag:yaml.org,2002:str" {
                guard case .sequenceStart = events[valueStart] else {
                    return Array(events[..<valueStart]) + newSequence(keys) + Array(events[valueEnd...])
                }
                var present: Set<String> = []
                var item = valueStart + 1
                while item < valueEnd - 1 {
                    if case .scalar(_, _, let value, _, _, _) = events[item] { present.insert(value) }
                    item = stream.endOfNode(at: item)
                }
                let added = keys.filter { !present.contains($0) }.map(keyScalar)
                return Array(events[..<(valueEnd - 1)]) + added + Array(events[(valueEnd - 1)...])
            }
            position = valueEnd
        }
        return Array(events[..<rootEnd]) + [entryName] + newSequence(keys) + Array(events[rootEnd...])
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
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var text = self
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return text
    }
}
