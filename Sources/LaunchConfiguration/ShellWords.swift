/// Splits a legacy option string such as `KVM_CPU_OPTS="-m 2048 -smp 2"` into words the way a
/// POSIX shell would split an unexpanded word list: blanks separate words, single quotes keep
/// everything literally, double quotes keep blanks, a backslash escapes the next character.
///
/// Nothing is expanded: no variables, globs or command substitution, because nothing here is
/// ever given to a shell.
package enum ShellWords {
    /// A quote was opened and not closed, or a trailing backslash escapes nothing.
    package struct Error: Swift.Error, Equatable, Sendable, CustomStringConvertible {
        package var text: String
        package var description: String { "unbalanced quote or trailing backslash in \"\(text)\"" }
    }

    package static func split(_ text: String) throws(Error) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for character in text {
            if escaped {
                current.append(character)
                escaped = false
                continue
            }
            switch (quote, character) {
            case (nil, "\\"), ("\"", "\\"):
                escaped = true
                inWord = true
            case (nil, "'"), (nil, "\""):
                quote = character
                inWord = true
            case ("'", "'"), ("\"", "\""):
                quote = nil
            case (nil, let blank) where blank == " " || blank == "\t" || blank == "\n":
                if inWord { words.append(current) }
                current = ""
                inWord = false
            default:
                current.append(character)
                inWord = true
            }
        }
        guard quote == nil, !escaped else { throw Error(text: text) }
        if inWord { words.append(current) }
        return words
    }
}
