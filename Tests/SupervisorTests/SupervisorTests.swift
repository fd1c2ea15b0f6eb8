import Foundation
import Synchronization
import TestSupport
import Testing
import QEMU
import Supervisor
import SystemPackage

/// In-process supervision: the test runner has other children, so these tests
/// wait for their own child only; reaping of every child runs in the helper process.
@Suite struct SupervisorTests {
    private func supervisor(powerdown: Duration = .seconds(3600), quit: Duration = .seconds(3600)) -> Supervisor {
        Supervisor(policy: ShutdownPolicy(powerdownTimeout: powerdown, quitTimeout: quit), reaping: .supervisedChildOnly)
    }

    private func shell(_ script: String, output: LinePipe? = nil) -> ChildCommand {
        ChildCommand(
            executable: "/bin/sh",
            arguments: ["-c", script],
            fileDescriptors: output.map { [FileDescriptorMapping(parent: $0.writeEnd, child: 4)] } ?? []
        )
    }

    @Test(arguments: [0, 1, 7, 255] as [Int32])
    func reportsTheExitStatus(_ code: Int32) async throws {
        let (stops, _) = makeStopStream()
        let result = try await supervisor().run(shell("exit \(code)"), stopActions: .signals(), stopRequests: stops)
        #expect(result.termination == .exited(code))
        #expect(result.outcome == (code == 0 ? .poweredOff : .crashed))
        #expect(result.exitCode == code)
        #expect(result.succeeded == (code == 0))
        #expect(result.stopRequest == nil)
    }

    @Test func deathBySignalIsACrash() async throws {
        let (stops, _) = makeStopStream()
        let result = try await supervisor().run(shell("kill -SEGV $$"), stopActions: .signals(), stopRequests: stops)
        guard case let .signaled(signal, _) = result.termination else {
            Issue.record("expected a signal, got \(result.termination)")
            return
        }
        #expect(signal == SIGSEGV)
        #expect(result.outcome == .crashed)
        #expect(result.exitCode == 128 + SIGSEGV)
    }

    @Test func passesArgumentsEnvironmentAndOnlyTheMappedDescriptors() async throws {
        let output = try LinePipe()
        let zero = open("/dev/zero", O_RDONLY | O_CLOEXEC)
        defer { close(zero) }
        // Opened without close-on-exec: must still not reach the child.
        let leaked = open("/dev/null", O_RDONLY)
        defer { close(leaked) }

        let script = """
        printf '%s\\n' "$@" >&4
        printf 'FOO=%s\\n' "$FOO" >&4
        for fd in {3..64}; do if [ -e /proc/$$/fd/$fd ]; then echo "open $fd" >&4; fi; done
        """
        let arguments = ["a b", "'single'", "\"double\"", "$HOME", "", "; echo injected"]
        let command = ChildCommand(
            executable: "/bin/bash",
            arguments: ["-c", script, "bash"] + arguments,
            environment: ["FOO": "bar baz"],
            fileDescriptors: [
                FileDescriptorMapping(parent: output.writeEnd, child: 4),
                FileDescriptorMapping(parent: zero, child: 9),
            ]
        )
        let (stops, _) = makeStopStream()
        let result = try await supervisor().run(command, stopActions: .signals(), stopRequests: stops, onSpawn: { _ in
            output.closeWriteEnd()
        })
        #expect(result.termination == .exited(0))
        let lines = await output.readAll()
        #expect(lines == arguments + ["FOO=bar baz", "open 4", "open 9"])
    }

    @Test func descriptorsMayBeSwappedAndPutOnStandardStreams() async throws {
        let first = try LinePipe()
        let second = try LinePipe()
        // first.writeEnd becomes 1 (stdout) and second.writeEnd becomes 4.
        let command = ChildCommand(
            executable: "/bin/sh",
            arguments: ["-c", "echo to-stdout; echo to-four >&4"],
            fileDescriptors: [
                FileDescriptorMapping(parent: first.writeEnd, child: 1),
                FileDescriptorMapping(parent: second.writeEnd, child: 4),
            ]
        )
        let (stops, _) = makeStopStream()
        _ = try await supervisor().run(command, stopActions: .signals(), stopRequests: stops, onSpawn: { _ in
            first.closeWriteEnd()
            second.closeWriteEnd()
        })
        #expect(await first.readAll() == ["to-stdout"])
        #expect(await second.readAll() == ["to-four"])
    }

    @Test func aStopRequestPowersOffAGuestThatHonoursIt() async throws {
        let output = try LinePipe()
        let (stops, requests) = makeStopStream()
        let run = Task {
            try await supervisor().run(
                shell("trap 'exit 0' TERM; echo ready >&4; while :; do sleep 0.05; done", output: output),
                stopActions: .signals(), stopRequests: stops)
        }
        #expect(await output.readLine() == "ready")
        requests.yield(StopRequest(reason: "test"))
        let result = try await run.value
        #expect(result.outcome == .poweredOff)
        #expect(result.termination == .exited(0))
        #expect(result.stopRequest == StopRequest(reason: "test"))
        #expect(result.exitCode == 0)
    }

    @Test func aReapedChildIsNeverSignalledAgain() async throws {
        let output = try LinePipe()
        let (stops, requests) = makeStopStream()
        let seen = Mutex<SupervisedChild?>(nil)
        let actions = StopActions(
            powerdown: { child in
                seen.withLock { $0 = child }
                child.signal(SIGTERM)
            },
            quit: { _ in }
        )
        let run = Task {
            try await supervisor().run(
                shell("trap 'exit 0' TERM; echo ready >&4; while :; do sleep 0.05; done", output: output),
                stopActions: actions, stopRequests: stops)
        }
        #expect(await output.readLine() == "ready")
        requests.yield(StopRequest(reason: "test"))
        #expect(try await run.value.outcome == .poweredOff)
        let child = try #require(seen.withLock { $0 })
        #expect(child.hasExited)
        // The pid may belong to another process by now: the signal is not sent.
        #expect(child.signal(SIGTERM) == false)
    }

    @Test func aChildIgnoringTheStopIsKilledAfterTheTimeouts() async throws {
        let output = try LinePipe()
        let (stops, requests) = makeStopStream()
        let run = Task {
            try await supervisor(powerdown: .milliseconds(200), quit: .milliseconds(200)).run(
                shell("trap '' TERM; echo ready >&4; while :; do sleep 0.05; done", output: output),
                stopActions: .signals(), stopRequests: stops)
        }
        #expect(await output.readLine() == "ready")
        requests.yield(.signal(SIGTERM))
        let result = try await run.value
        #expect(result.outcome == .killedAfterTimeout)
        #expect(result.termination == .signaled(SIGKILL, coreDumped: false))
        #expect(result.exitCode == 137)
        #expect(result.stopRequest == .signal(SIGTERM))
    }

    @Test func repeatedStopRequestsSkipTheWaits() async throws {
        let output = try LinePipe()
        let (stops, requests) = makeStopStream()
        let run = Task {
            // Hour-long timeouts: only the repeated requests can end this test.
            try await supervisor().run(
                shell("trap '' TERM; echo ready >&4; while :; do sleep 0.05; done", output: output),
                stopActions: .signals(), stopRequests: stops)
        }
        #expect(await output.readLine() == "ready")
        for _ in 0..<3 { requests.yield(.signal(SIGINT)) }
        let result = try await run.value
        #expect(result.outcome == .killedAfterTimeout)
        #expect(result.stopRequest == .signal(SIGINT))
    }

    @Test func aFailedPowerdownGoesStraightToQuit() async throws {
        let output = try LinePipe()
        let (stops, requests) = makeStopStream()
        struct Unreachable: Error {}
        let actions = StopActions(
            powerdown: { _ in throw Unreachable() },
            quit: { child in child.signal(SIGUSR1) }
        )
        let run = Task {
            try await supervisor().run(
                shell("trap 'exit 0' USR1; trap '' TERM; echo ready >&4; while :; do sleep 0.05; done", output: output),
                stopActions: actions, stopRequests: stops)
        }
        #expect(await output.readLine() == "ready")
        requests.yield(StopRequest(reason: "test"))
        let result = try await run.value
        #expect(result.outcome == .quitAfterTimeout)
        #expect(result.termination == .exited(0))
        #expect(result.exitCode == 2)
    }

    @Test func cancellingTheTaskStopsTheChildGracefully() async throws {
        let output = try LinePipe()
        let (stops, _) = makeStopStream()
        let run = Task {
            try await supervisor().run(
                shell("trap 'exit 0' TERM; echo ready >&4; while :; do sleep 0.05; done", output: output),
                stopActions: .signals(), stopRequests: stops)
        }
        #expect(await output.readLine() == "ready")
        run.cancel()
        let result = try await run.value
        #expect(result.outcome == .poweredOff)
        #expect(result.stopRequest?.reason == "cancellation")
    }

    @Test func aRealQEMUThatIgnoresThePowerButtonIsQuit() async throws {
        let directory = try TemporaryDirectory()
        let socket = directory.file("qmp.sock")
        let null = NullDevice()
        let (stops, requests) = makeStopStream()
        let command = ChildCommand(
            executable: qemuBinary,
            arguments: try pausedQEMUArguments(socketPath: socket),
            fileDescriptors: [FileDescriptorMapping(parent: null.fd, child: 0), FileDescriptorMapping(parent: null.fd, child: 1)]
        )
        let run = Task {
            try await supervisor(powerdown: .milliseconds(500), quit: .seconds(10)).run(
                command, stopActions: .qmp(socketPath: socket), stopRequests: stops)
        }
        try await waitForFile(socket)
        requests.yield(.signal(SIGTERM))
        let result = try await run.value
        #expect(result.outcome == .quitAfterTimeout)
        #expect(result.termination == .exited(0))
    }

    @Test func aHungQEMUIsKilled() async throws {
        let directory = try TemporaryDirectory()
        let socket = directory.file("qmp.sock")
        let null = NullDevice()
        let (stops, requests) = makeStopStream()
        let command = ChildCommand(
            executable: qemuBinary,
            arguments: try pausedQEMUArguments(socketPath: socket),
            fileDescriptors: [FileDescriptorMapping(parent: null.fd, child: 0), FileDescriptorMapping(parent: null.fd, child: 1)]
        )
        let pid = Mutex<pid_t>(0)
        let run = Task {
            try await supervisor(powerdown: .seconds(3600), quit: .milliseconds(500)).run(
                command, stopActions: .qmp(socketPath: socket, timeout: .milliseconds(300)), stopRequests: stops,
                onSpawn: { spawned in pid.withLock { $0 = spawned } })
        }
        try await waitForFile(socket)
        // A stopped QEMU accepts the connection but never answers: powerdown
        // times out, quit times out, SIGTERM stays pending, SIGKILL ends it.
        #expect(kill(pid.withLock { $0 }, SIGSTOP) == 0)
        requests.yield(.signal(SIGTERM))
        let result = try await run.value
        #expect(result.outcome == .killedAfterTimeout)
        #expect(result.termination == .signaled(SIGKILL, coreDumped: false))
    }

    @Test func spawnProblemsAreTypedErrors() async throws {
        let (stops, _) = makeStopStream()
        await #expect(throws: SupervisorError.spawnFailed(executable: "/nonexistent/qemu", errno: .noSuchFileOrDirectory)) {
            try await supervisor().run(ChildCommand(executable: "/nonexistent/qemu"), stopActions: .signals(), stopRequests: stops)
        }
        let closed = open("/dev/null", O_RDONLY | O_CLOEXEC)
        close(closed)
        await #expect(throws: SupervisorError.invalidFileDescriptor(closed)) {
            try await supervisor().run(
                ChildCommand(executable: "/bin/true", fileDescriptors: [FileDescriptorMapping(parent: closed, child: 3)]),
                stopActions: .signals(), stopRequests: stops)
        }
        let null = NullDevice()
        await #expect(throws: SupervisorError.duplicateChildFileDescriptor(3)) {
            try await supervisor().run(
                ChildCommand(executable: "/bin/true", fileDescriptors: FileDescriptorMapping.sequential([null.fd]) + [FileDescriptorMapping(parent: null.fd, child: 3)]),
                stopActions: .signals(), stopRequests: stops)
        }
    }

    @Test func sequentialMappingStartsAfterStandardStreams() {
        #expect(FileDescriptorMapping.sequential([17, 12, 30]) == [
            FileDescriptorMapping(parent: 17, child: 3),
            FileDescriptorMapping(parent: 12, child: 4),
            FileDescriptorMapping(parent: 30, child: 5),
        ])
        #expect(FileDescriptorMapping.sequential([8], startingAt: 10) == [FileDescriptorMapping(parent: 8, child: 10)])
    }
}
