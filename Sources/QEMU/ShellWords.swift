/// Splits a legacy option string (`KVM_CPU_OPTS="-m 2048 -smp 2"`) into words.
///
/// The old container passed these variables through `eval`, so quoting worked the
/// way a POSIX shell does it. This splitter keeps that quoting and nothing else:
/// - whitespace separates words;
/// - `'...'` is literal;
/// - `"..."` is literal except that a backslash escapes `"`, `\`, `$` and `` ` ``;
/// - outside quotes a backslash makes the next character literal.
///
/// No expansion happens: `$VAR`, `*`, `~` and redirections stay literal text, so
/// an environment value can never run a command.
public enum ShellWords {
    /// A malformed legacy option string.
    public enum SplitError: Error, Equatable, CustomStringConvertible {
        case unterminatedQuote(Character, text: String)
        case trailingBackslash(text: String)

        public var description: String {
            switch self {
            case let .unterminatedQuote(quote, text):
                "unterminated \(quote) quote in options '\(text)': close the quote or remove it"
            case let .trailingBackslash(text):
                "options '\(text)' end with a lone backslash: remove it or escape it as \\\\"
            }
        }
    }

    /// Splits `text` into words; an empty or all-blank string gives no words.
    public static func split(_ text: String) throws(SplitError) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var iterator = text.makeIterator()

        while let character = iterator.next() {
            switch character {
            case "'":
                inWord = true
                var closed = false
                while let next = iterator.next() {
                    if next == "'" { closed = true; break }
                    current.append(next)
                }
                if !closed { throw .unterminatedQuote("'", text: text) }
            case "\"":
                inWord = true
                var closed = false
                while let next = iterator.next() {
                    if next == "\"" { closed = true; break }
                    if next == "\\" {
                        guard let escaped = iterator.next() else { break }
                        if "\"\\$`".contains(escaped) {
                            current.append(escaped)
                        } else if escaped != "\n" {
                            current.append("\\")
                            current.append(escaped)
                        }
                        continue
                    }
                    current.append(next)
                }
                if !closed { throw .unterminatedQuote("\"", text: text) }
            case "\\":
                guard let escaped = iterator.next() else { throw .trailingBackslash(text: text) }
                if escaped != "\n" {
                    inWord = true
                    current.append(escaped)
                }
            case _ where character.isWhitespace:
                if inWord {
                    words.append(current)
                    current = ""
                    inWord = false
                }
            default:
                inWord = true
                current.append(character)
            }
        }
        if inWord { words.append(current) }
        return words
    }
}
