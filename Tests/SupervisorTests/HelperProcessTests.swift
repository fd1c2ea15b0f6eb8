import Foundation
import TestSupport
import Testing
import Supervisor

/// A real supervisor in a separate process: real signals, real reaping.
@Suite struct HelperProcessTests {
    @Test func aRealSIGTERMQuitsAQEMUWhoseGuestIgnoresThePowerButton() async throws {
        let directory = try TemporaryDirectory()
        let socket = directory.file("qmp.sock")
        let helper = try HelperProcess(
            ["--qmp", socket, "--powerdown-ms", "300", "--", qemuBinary] + (try pausedQEMUArguments(socketPath: socket)))
        _ = try await helper.line(startingWith: "spawned ")
        try await waitForFile(socket)
        #expect(kill(helper.pid, SIGTERM) == 0)
        let result = fields(try await helper.line(startingWith: "result "))
        #expect(result["outcome"] == "quitAfterTimeout")
        #expect(result["stop"] == "SIGTERM")
        #expect(result["code"] == "2")
    }

    @Test func aRealSIGINTPowersOffAChildThatHonoursIt() async throws {
        let helper = try HelperProcess(
            ["--", "/bin/sh", "-c", "trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done"])
        _ = try await helper.line(startingWith: "ready")
        #expect(kill(helper.pid, SIGINT) == 0)
        let result = fields(try await helper.line(startingWith: "result "))
        #expect(result["outcome"] == "poweredOff")
        #expect(result["stop"] == "SIGINT")
        #expect(result["code"] == "0")
    }

    /// The child starts a grandchild, lets it become an orphan of the (subreaper)
    /// supervisor, and exits 3 only once that orphan is gone, i.e. reaped: a zombie
    /// still answers `kill -0`. Exit 4 means it was never reaped.
    @Test func orphansAreReapedByASubreaper() async throws {
        let directory = try TemporaryDirectory()
        let pidFile = directory.file("orphan.pid")
        let script = """
        ( sleep 0.1 & echo $! > '\(pidFile)' )
        n=0
        while kill -0 "$(cat '\(pidFile)')" 2>/dev/null; do
          n=$((n + 1)); [ $n -gt 400 ] && exit 4
          sleep 0.05
        done
        exit 3
        """
        let helper = try HelperProcess(["--subreaper", "--", "/bin/sh", "-c", script])
        let result = fields(try await helper.line(startingWith: "result "))
        #expect(result["code"] == "3")
        #expect(result["orphans"] == "1")
        #expect(result["zombies"] == "0")
    }
}
