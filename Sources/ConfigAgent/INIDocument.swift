/// An INI file kept line by line so that merging settings changes only what it must.
///
/// Merging follows `crudini --merge`: an existing key is updated in place (its
/// `key = ` / `key=` spelling kept, continuation lines of the old value dropped),
/// comments, blank lines and order are kept, a new key goes after the last key
/// of its section (or right after the header of a section without keys), a new
/// section is appended at the end after one blank line.
///
/// Deliberate details:
/// - Keys before the first header belong to the nil section, separate from
///   `[DEFAULT]`. A new nil-section key goes after the last such key, or at the
///   top of the file. A new `[DEFAULT]` section goes before the first section
///   (above the comments directly attached to it) instead of at the end.
/// - A key repeated in a section: the last occurrence is updated (the one
///   "last wins" parsers such as oslo.config use), earlier ones are kept.
///   A section whose header appears twice is searched in all its blocks; new
///   keys go to its last block.
/// - Keys and section names match exactly (case-sensitive). `=` and `:` both
///   separate a key from its value (whichever comes first), like oslo.config.
/// - New keys copy the separator spelling (` = ` or `=`) of the nearest key.
/// - CRLF files stay CRLF, a byte order mark stays; the result always ends with a line break.
package struct INIDocument: Sendable, Hashable, CustomStringConvertible {
    enum Line: Sendable, Hashable {
        /// A blank line, a comment, or a line that is neither header nor key: kept verbatim.
        case text(String)
        case header(raw: String, name: String)
        case entry(Entry)
    }

    struct Entry: Sendable, Hashable {
        var key: String
        /// The line up to where the value starts (indentation, key, separator, spaces).
        var lead: String
        /// The part of `lead` after the key, e.g. `" = "` or `"="`.
        var separator: String
        var value: String
        /// Indented lines continuing the value.
        var continuation: [String] = []

        var renderedLines: [String] {
            [(lead + value).trimmingTrailingBlanksIfEmpty(value)] + continuation
        }
    }

    private(set) var lines: [Line]
    private let newline: String
    /// A UTF-8 byte order mark the file started with, given back on output.
    private let byteOrderMark: Bool

    /// Parses `text`; never fails (lines it does not understand are kept verbatim).
    package init(_ text: String) {
        var text = text
        byteOrderMark = text.hasPrefix("\u{FEFF}")
        if byteOrderMark { text.removeFirst() }
        newline = text.contains("\r\n") ? "\r\n" : "\n"
        // "\r\n" is a single Character in Swift, so split on both.
        var rawLines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map(String.init)
        if rawLines.last == "" { rawLines.removeLast() }
        var parsed: [Line] = []
        for raw in rawLines {
            let content = raw.trimmedWhitespace
            if content.isEmpty || content.hasPrefix("#") || content.hasPrefix(";") {
                parsed.append(.text(raw))
                continue
            }
            if raw.first == " " || raw.first == "\t", case .entry(var entry)? = parsed.last {
                entry.continuation.append(raw)
                parsed[parsed.count - 1] = .entry(entry)
                continue
            }
            if content.hasPrefix("["), let close = content.lastIndex(of: "]") {
                let name = String(content[content.index(after: content.startIndex)..<close]).trimmedWhitespace
                parsed.append(.header(raw: raw, name: name))
                continue
            }
            if let entry = INIDocument.parseEntry(raw) {
                parsed.append(.entry(entry))
            } else {
                parsed.append(.text(raw))
            }
        }
        lines = parsed
    }

    private static func parseEntry(_ raw: String) -> Entry? {
        guard let separator = raw.firstIndex(where: { $0 == "=" || $0 == ":" }) else { return nil }
        let key = String(raw[raw.startIndex..<separator]).trimmedWhitespace
        guard !key.isEmpty else { return nil }
        var valueStart = raw.index(after: separator)
        while valueStart < raw.endIndex, raw[valueStart] == " " || raw[valueStart] == "\t" {
            valueStart = raw.index(after: valueStart)
        }
        var keyEnd = separator
        while keyEnd > raw.startIndex, raw[raw.index(before: keyEnd)] == " " || raw[raw.index(before: keyEnd)] == "\t" {
            keyEnd = raw.index(before: keyEnd)
        }
        return Entry(
            key: key,
            lead: String(raw[..<valueStart]),
            separator: String(raw[keyEnd..<valueStart]),
            value: String(raw[valueStart...])
        )
    }

    /// The document as text.
    package var text: String {
        var out: [String] = []
        for line in lines {
            switch line {
            case .text(let raw), .header(let raw, _): out.append(raw)
            case .entry(let entry): out += entry.renderedLines
            }
        }
        return (byteOrderMark ? "\u{FEFF}" : "") + (out.isEmpty ? "" : out.joined(separator: newline) + newline)
    }

    package var description: String { text }

    /// The value `key` has for a last-wins reader, ignoring continuation lines.
    package func value(section: String?, key: String) -> String? {
        for index in lineIndices(of: section).reversed() {
            if case .entry(let entry) = lines[index], entry.key == key { return entry.value }
        }
        return nil
    }

    /// Names of sections in order of first appearance.
    package var sections: [String] {
        var seen: [String] = []
        for case .header(_, let name) in lines where !seen.contains(name) { seen.append(name) }
        return seen
    }

    /// Merges settings in order; see the type's documentation for where things go.
    package mutating func merge(_ settings: [INISetting]) {
        for setting in settings { set(section: setting.section, key: setting.key, value: setting.value) }
    }

    /// Sets one key, updating it in place when it exists.
    package mutating func set(section: String?, key: String, value: String) {
        let indices = lineIndices(of: section)
        if let index = indices.last(where: { if case .entry(let e) = lines[$0] { e.key == key } else { false } }),
            case .entry(var entry) = lines[index]
        {
            entry.value = value
            entry.continuation = []
            lines[index] = .entry(entry)
            return
        }
        let newEntry = makeEntry(key: key, value: value, near: indices)
        if let section, !sections.contains(section) {
            insertSection(section, entry: newEntry)
            return
        }
        if let lastEntry = indices.last(where: { if case .entry = lines[$0] { true } else { false } }) {
            lines.insert(.entry(newEntry), at: lastEntry + 1)
        } else if section != nil, let header = lastHeaderIndex(of: section!) {
            lines.insert(.entry(newEntry), at: header + 1)
        } else {
            // A nil-section key in a file that has none yet: at the top.
            let separate = !lines.isEmpty && !isBlank(0)
            lines.insert(.entry(newEntry), at: 0)
            if separate { lines.insert(.text(""), at: 1) }
        }
    }

    // MARK: - Helpers

    /// Indices of the lines inside a section's blocks (headers excluded), or before the first header for nil.
    private func lineIndices(of section: String?) -> [Int] {
        var result: [Int] = []
        var current: String? = nil
        var inTarget = section == nil
        for (index, line) in lines.enumerated() {
            if case .header(_, let name) = line {
                current = name
                inTarget = section != nil && current == section
                continue
            }
            if inTarget { result.append(index) }
        }
        return result
    }

    private func lastHeaderIndex(of section: String) -> Int? {
        lines.lastIndex { if case .header(_, let name) = $0 { name == section } else { false } }
    }

    private func isBlank(_ index: Int) -> Bool {
        if case .text(let raw) = lines[index] { return raw.trimmedWhitespace.isEmpty }
        return false
    }

    private func makeEntry(key: String, value: String, near indices: [Int]) -> Entry {
        var separator = " = "
        let reference = indices.last { if case .entry = lines[$0] { true } else { false } }
            ?? lines.indices.last { if case .entry = lines[$0] { true } else { false } }
        if let reference, case .entry(let entry) = lines[reference] { separator = entry.separator }
        return Entry(key: key, lead: key + separator, separator: separator, value: value)
    }

    private mutating func insertSection(_ section: String, entry: Entry) {
        let header = Line.header(raw: "[\(section)]", name: section)
        if section == "DEFAULT", var position = lines.firstIndex(where: { if case .header = $0 { true } else { false } }) {
            // Keep comments written right above the first section with that section.
            while position > 0, case .text(let raw) = lines[position - 1], !raw.trimmedWhitespace.isEmpty {
                position -= 1
            }
            var block: [Line] = []
            if position > 0 && !isBlank(position - 1) { block.append(.text("")) }
            block += [header, .entry(entry), .text("")]
            lines.insert(contentsOf: block, at: position)
            return
        }
        if let last = lines.indices.last, !isBlank(last) { lines.append(.text("")) }
        lines += [header, .entry(entry)]
    }
}

extension String {
    /// `self` without trailing blanks when the value written into it is empty (`key = ` becomes `key =`).
    fileprivate func trimmingTrailingBlanksIfEmpty(_ value: String) -> String {
        value.isEmpty ? String(droppingTrailingBlanks) : self
    }
}
