import Foundation
import NetworkTypes
import Testing

/// `startDetachedThread(named:)`: the body runs on a new thread that carries the name (cut to the
/// kernel's 15 bytes), as `ps -L` shows it.
@Suite struct DedicatedThreadTests {
    /// The calling thread's name as the kernel has it.
    static func currentThreadName() -> String? {
        (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)).map { String($0.dropLast()) }
    }

    /// What `body` returns, run on a detached thread made by `startDetachedThread`.
    static func onDetachedThread(named name: String?, _ body: @escaping @Sendable () -> String?) async -> (started: Bool, value: String?) {
        await withCheckedContinuation { continuation in
            let started = startDetachedThread(named: name) { continuation.resume(returning: (true, body())) }
            if !started { continuation.resume(returning: (false, nil)) }
        }
    }

    @Test func theThreadCarriesItsNameCutTo15Bytes() async {
        let result = await Self.onDetachedThread(named: "essentials-named-thread") { Self.currentThreadName() }
        #expect(result.started)
        #expect(result.value == "essentials-name", "named through /proc/thread-self/comm")
    }
}
