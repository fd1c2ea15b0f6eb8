import Testing
import QEMU

@Suite struct ShellWordsTests {
    @Test(arguments: [
        ("-m 1024 -smp 2", ["-m", "1024", "-smp", "2"]),
        ("  -m\t2048\n ", ["-m", "2048"]),
        ("", []),
        ("   ", []),
        ("-append 'console=ttyS0 root=/dev/vda'", ["-append", "console=ttyS0 root=/dev/vda"]),
        ("-name \"my vm\"", ["-name", "my vm"]),
        ("a\\ b c", ["a b", "c"]),
        ("\"say \\\"hi\\\" \\$HOME\"", ["say \"hi\" $HOME"]),
        ("\"keep \\n literal\"", ["keep \\n literal"]),
        ("x''y \"\"", ["xy", ""]),
        ("$HOME *.img ~ ;rm", ["$HOME", "*.img", "~", ";rm"]),
        ("-drive file=/image/image,if=virtio", ["-drive", "file=/image/image,if=virtio"]),
    ])
    func splits(_ text: String, _ expected: [String]) throws {
        #expect(try ShellWords.split(text) == expected)
    }

    @Test func rejectsUnterminatedQuotes() {
        #expect(throws: ShellWords.SplitError.unterminatedQuote("'", text: "-name 'vm")) {
            try ShellWords.split("-name 'vm")
        }
        #expect(throws: ShellWords.SplitError.unterminatedQuote("\"", text: "-name \"vm")) {
            try ShellWords.split("-name \"vm")
        }
        #expect(throws: ShellWords.SplitError.trailingBackslash(text: "-m 1\\")) {
            try ShellWords.split("-m 1\\")
        }
    }

    @Test func errorDescriptionsAreOneLine() {
        let errors: [ShellWords.SplitError] = [.unterminatedQuote("'", text: "a 'b"), .trailingBackslash(text: "a\\")]
        for error in errors {
            #expect(!error.description.contains("\n"))
            #expect(error.description.contains(":"))
        }
    }
}
