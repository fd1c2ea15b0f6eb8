/// A line's origin: the file as it was named and its 1-based line number.
package struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    package var file: String
    package var line: Int

    package init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    package var description: String { "\(file):\(line)" }
}

/// One `KEY=VALUE` line that fits the data model.
package struct KeyValueEntry: Sendable, Hashable {
    package var key: ConfigKey
    package var value: String
    package var location: SourceLocation

    package init(key: ConfigKey, value: String, location: SourceLocation) {
        self.key = key
        self.value = value
        self.location = location
    }
}

/// Something worth telling the operator that does not stop a load.
///
/// Notices never contain values, only key names and locations.
package enum ConfigNotice: Sendable, Hashable, CustomStringConvertible {
    /// Trailing spaces or tabs after a value were removed.
    case trailingWhitespaceTrimmed(SourceLocation, key: String)
    /// A value contains `%XX` escapes and was kept verbatim.
    case percentEscapesKept(SourceLocation, key: String)
    /// A bad line was skipped (``KeyValueFile/Options/skipInvalidLines``).
    case skipped(SourceLocation, ConfigInputError.Problem)
    /// A later line set the same key to a different value; the later one wins.
    case overridden(SourceLocation, key: String, previous: SourceLocation)

    package var description: String {
        switch self {
        case .trailingWhitespaceTrimmed(let location, let key):
            "\(location): trailing spaces/tabs trimmed from the value of \(key)"
        case .percentEscapesKept(let location, let key):
            "\(location): the value of \(key) contains %XX escapes, kept verbatim"
                + " (load with --legacy or --percent-decode if the file was written for the old curl-based loader)"
        case .skipped(let location, let problem):
            "\(location): skipped: \(problem)"
        case .overridden(let location, let key, let previous):
            "\(location): \(key) overrides the different value set at \(previous)"
        }
    }
}

/// A line (or file) that cannot be loaded.
package struct ConfigInputError: Error, Sendable, Hashable, CustomStringConvertible {
    package enum Problem: Sendable, Hashable, CustomStringConvertible {
        case missingEquals
        case emptyKey
        case whitespaceAroundKey
        case badKey(ConfigKeyError)
        case badPercentEscape(key: String)
        case notUTF8
        case unreadable(String)

        package var description: String {
            switch self {
            case .missingEquals:
                "no '=' in line; write KEY=VALUE, or start the line with '#' for a comment"
            case .emptyKey:
                "empty key before '='"
            case .whitespaceAroundKey:
                "spaces around the key; write KEY=VALUE without them (the value is taken verbatim after the first '=')"
            case .badKey(let error):
                error.description
            case .badPercentEscape(let key):
                "the value of \(key) has a %XX escape that does not decode to UTF-8 text"
            case .notUTF8:
                "file is not UTF-8 text"
            case .unreadable(let reason):
                "cannot read: \(reason)"
            }
        }
    }

    package var location: SourceLocation
    package var problem: Problem

    package init(_ location: SourceLocation, _ problem: Problem) {
        self.location = location
        self.problem = problem
    }

    package var description: String { "\(location): \(problem)" }
}

/// Parser for the operator's `KEY=VALUE` files.
///
/// Rules: a line is split at its first `=`; the key must fit the data model
/// (``ConfigKey``); the value is everything after the `=`, verbatim except that
/// trailing spaces and tabs are trimmed (with a notice). Blank lines and lines
/// whose first non-blank character is `#` are ignored; a `#` inside a value is
/// part of the value. CRLF line ends are accepted.
package enum KeyValueFile {
    /// How lines are read. The defaults are strict; ``legacy`` suits files written for the old loader.
    package struct Options: Sendable, Hashable {
        /// Decode `%XX` escapes in values, as the old loader's `curl -d value=…` did
        /// (so `qemu%2Btcp://` becomes `qemu+tcp://`). `+` is kept as is.
        package var percentDecode: Bool
        /// Skip lines that do not fit (with a notice) instead of failing, as the old
        /// loader ignored them.
        package var skipInvalidLines: Bool

        package init(percentDecode: Bool = false, skipInvalidLines: Bool = false) {
            self.percentDecode = percentDecode
            self.skipInvalidLines = skipInvalidLines
        }

        /// Both: how the old curl-based loader treated its files.
        package static let legacy = Options(percentDecode: true, skipInvalidLines: true)
    }

    /// The outcome of parsing one file: entries, notices and every error found.
    package struct Parsed: Sendable, Hashable {
        package var entries: [KeyValueEntry] = []
        package var notices: [ConfigNotice] = []
        package var errors: [ConfigInputError] = []
    }

    /// Parses `text`, naming it `file` in locations. Collects all errors rather than stopping at the first.
    package static func parse(_ text: String, file: String, options: Options = Options()) -> Parsed {
        var parsed = Parsed()
        var lineNumber = 0
        // "\r\n" is a single Character in Swift, so split on both.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            let location = SourceLocation(file: file, line: lineNumber)
            switch parseLine(String(rawLine), at: location, options: options, notices: &parsed.notices) {
            case .none:
                break
            case .entry(let entry):
                parsed.entries.append(entry)
            case .problem(let problem):
                if options.skipInvalidLines {
                    parsed.notices.append(.skipped(location, problem))
                } else {
                    parsed.errors.append(ConfigInputError(location, problem))
                }
            }
        }
        return parsed
    }

    private enum LineResult {
        case none
        case entry(KeyValueEntry)
        case problem(ConfigInputError.Problem)
    }

    private static func parseLine(
        _ rawLine: String,
        at location: SourceLocation,
        options: Options,
        notices: inout [ConfigNotice]
    ) -> LineResult {
        let line = rawLine
        let content = line.trimmedWhitespace
        if content.isEmpty || content.hasPrefix("#") { return .none }
        guard let equals = line.firstIndex(of: "=") else { return .problem(.missingEquals) }
        let rawKey = String(line[line.startIndex..<equals])
        if rawKey.trimmedWhitespace.isEmpty { return .problem(.emptyKey) }
        if rawKey != rawKey.trimmedWhitespace { return .problem(.whitespaceAroundKey) }
        let key: ConfigKey
        do {
            key = try ConfigKey(path: rawKey)
        } catch {
            return .problem(.badKey(error))
        }
        let rawValue = String(line[line.index(after: equals)...])
        var value = String(rawValue.droppingTrailingBlanks)
        var lineNotices: [ConfigNotice] = []
        if value.utf8.count != rawValue.utf8.count {
            lineNotices.append(.trailingWhitespaceTrimmed(location, key: rawKey))
        }
        if PercentEncoding.containsEscape(value) {
            if options.percentDecode {
                guard let decoded = PercentEncoding.decode(value) else { return .problem(.badPercentEscape(key: rawKey)) }
                value = decoded
            } else {
                lineNotices.append(.percentEscapesKept(location, key: rawKey))
            }
        }
        notices += lineNotices
        return .entry(KeyValueEntry(key: key, value: value, location: location))
    }
}

/// `%XX` escapes as the old loader's form-encoded upload decoded them.
enum PercentEncoding {
    static func containsEscape(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count >= 3 else { return false }
        for index in 0..<(bytes.count - 2)
        where bytes[index] == UInt8(ascii: "%") && hexValue(bytes[index + 1]) != nil && hexValue(bytes[index + 2]) != nil {
            return true
        }
        return false
    }

    /// Decodes every `%XX`; other `%` are kept. Returns nil if the result is not UTF-8.
    static func decode(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
            {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
