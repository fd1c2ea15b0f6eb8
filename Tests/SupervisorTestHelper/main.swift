// Runs a Supervisor as a separate process so tests can send it real signals and
// let it reap orphans without disturbing the test runner.
//
// Usage: SupervisorTestHelper [--subreaper] [--qmp PATH] [--powerdown-ms N]
//                             [--quit-ms N] -- EXECUTABLE [ARG...]
// Prints "spawned PID" once the child runs, then one "result ..." line.
#if canImport(Glibc)
import Glibc
#endif
import QEMU
import Supervisor

func writeLine(_ line: String, to fd: Int32) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    writeLine("SupervisorTestHelper: \(message)", to: 2)
    exit(64)
}

func say(_ line: String) { writeLine(line, to: 1) }

func readText(_ path: String) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 1024)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : ""
}

/// Zombie children of this process, from /proc/*/stat.
func zombieChildren() -> Int {
    guard let directory = opendir("/proc") else { return -1 }
    defer { closedir(directory) }
    let me = getpid()
    var count = 0
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        guard Int32(name) != nil else { continue }
        let line = readText("/proc/\(name)/stat")
        // "pid (comm) S ppid ...": parse after the last ')'.
        guard let close = line.lastIndex(of: ")") else { continue }
        let fields = line[line.index(after: close)...].split(separator: " ")
        if fields.count > 1, fields[0] == "Z", Int32(fields[1]) == me { count += 1 }
    }
    return count
}

var arguments = Array(CommandLine.arguments.dropFirst())
var subreaper = false
var qmpPath: String?
var powerdown = ShutdownPolicy.defaultPowerdownTimeout
var quit = ShutdownPolicy.defaultQuitTimeout
while let first = arguments.first, first != "--" {
    arguments.removeFirst()
    switch first {
    case "--subreaper": subreaper = true
    case "--qmp": qmpPath = arguments.isEmpty ? nil : arguments.removeFirst()
    case "--powerdown-ms": powerdown = .milliseconds(Int(arguments.removeFirst()) ?? 0)
    case "--quit-ms": quit = .milliseconds(Int(arguments.removeFirst()) ?? 0)
    default: fail("unknown option \(first)")
    }
}
guard arguments.first == "--", arguments.count >= 2 else { fail("missing -- EXECUTABLE") }
arguments.removeFirst()

do {
    let stops = try StopSignals.install()
    if subreaper { try Supervisor.becomeSubreaper() }
    let supervisor = Supervisor(
        policy: ShutdownPolicy(powerdownTimeout: powerdown, quitTimeout: quit),
        reaping: subreaper ? .allChildren : .supervisedChildOnly
    )
    let result = try await supervisor.run(
        ChildCommand(executable: arguments[0], arguments: Array(arguments.dropFirst())),
        stopActions: qmpPath.map { StopActions.qmp(socketPath: $0, timeout: .seconds(2)) } ?? .signals(),
        stopRequests: stops,
        onSpawn: { say("spawned \($0)") }
    )
    say("result outcome=\(result.outcome) status=\(result.termination) code=\(result.exitCode) orphans=\(result.orphansReaped) zombies=\(zombieChildren()) stop=\(result.stopRequest?.reason ?? "none")")
    exit(0)
} catch {
    fail("\(error)")
}
