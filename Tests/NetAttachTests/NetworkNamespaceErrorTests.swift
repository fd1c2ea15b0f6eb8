import Foundation
import Netlink
import SystemPackage
import TestSupport
import Testing

/// `NetworkNamespace.run(inNamespaceAt:)` fails before entering anything, with the kernel's `Errno`,
/// and the body never runs.
@Suite struct NetworkNamespaceErrorTests {
    /// A missing file: `open` fails with ENOENT. A regular file opens, but `setns` refuses it with EINVAL.
    @Test(arguments: [(Errno.noSuchFileOrDirectory, "No such file or directory"), (Errno.invalidArgument, "Invalid argument")])
    func notANamespace(expected: Errno, text: String) throws {
        let scratch = try TemporaryDirectory()
        let path = scratch.path + "/errno-netns"
        if expected == .invalidArgument { try writeFile(path, "not a namespace") }
        var ran = false
        do {
            try NetworkNamespace.run(inNamespaceAt: path) { ran = true }
            Issue.record("entered \(path) as a network namespace")
        } catch let error as NetworkNamespace.Error {
            #expect(error.path == path && error.errno == expected)
            #expect(error.description == "network namespace \(path): \(text) (is it a namespace file such as /run/netns/NAME, and are you root?)")
        }
        #expect(!ran)
    }
}
