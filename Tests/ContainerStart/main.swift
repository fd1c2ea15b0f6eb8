// Starts a command the way a container runtime starts a container's entrypoint, for the tests that
// need the production shape: the command is PID 1 of a new PID namespace, in a private mount
// namespace with its own /proc and a fresh, empty tmpfs at /run (a Kubernetes restart: same network
// namespace, fresh filesystem). Run it inside the container's network namespace (`ip netns exec`).
//
// Usage: ContainerStart EXECUTABLE [ARG...]   (the environment is passed on unchanged)
//
// Standard error gets, before the command's own output, "ContainerStart: pid1 HOSTPID" (the
// command's PID as seen from outside, for a test that kills it from there) and at the end
// "ContainerStart: exited N" or "ContainerStart: killed by signal N". ContainerStart then ends the
// same way: exit status N, or killed by the same signal, so its parent sees the command's exact
// wait status. SIGTERM, SIGINT and SIGHUP are passed on to the command (`docker stop`); when
// ContainerStart itself dies, the kernel SIGKILLs the command.
#if canImport(Glibc)
import Glibc
#endif

func say(_ line: String) {
    let bytes = Array(("ContainerStart: " + line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    say("\(message): \(String(cString: strerror(errno)))")
    exit(70)
}

nonisolated(unsafe) var child: pid_t = 0

// unshare(2) and prctl(2) are not in Swift's Glibc module; take them from the C library by name.
let cloneNewNS: Int32 = 0x0002_0000, cloneNewPID: Int32 = 0x2000_0000, setParentDeathSignal: Int32 = 1
func libcFunction<T>(_ name: String, as type: T.Type) -> T {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else {  // RTLD_DEFAULT
        say("\(name) is missing from the C library")
        exit(70)
    }
    return unsafeBitCast(symbol, to: type)
}
let unshare = libcFunction("unshare", as: (@convention(c) (Int32) -> Int32).self)
let prctl = libcFunction("prctl", as: (@convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32).self)

let arguments = Array(CommandLine.arguments.dropFirst())
guard let executable = arguments.first, executable.hasPrefix("/") else {
    say("usage: ContainerStart /ABSOLUTE/EXECUTABLE [ARG...]")
    exit(64)
}

// Everything the child needs is prepared before fork: after it only system calls run.
let cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]

guard unshare(cloneNewPID | cloneNewNS) == 0 else { fail("unshare(CLONE_NEWPID | CLONE_NEWNS)") }
guard mount(nil, "/", nil, UInt(MS_REC | MS_PRIVATE), nil) == 0 else { fail("making / private") }
guard mount("kvm-launch-test-run", "/run", "tmpfs", UInt(MS_NOSUID), "mode=0755") == 0 else { fail("mounting a tmpfs on /run") }

for number in [SIGTERM, SIGINT, SIGHUP] {
    signal(number) { received in if child > 0 { kill(child, received) } }
}
// A runtime starts the entrypoint with no signal blocked; a test runner's thread may have many.
var noSignals = sigset_t()
sigemptyset(&noSignals)
sigprocmask(SIG_SETMASK, &noSignals, nil)

child = fork()
if child < 0 { fail("fork") }
if child == 0 {
    // PID 1 of the new namespace: die with the parent, see our own PIDs in /proc, then become the command.
    // (Its parent is outside its PID namespace: getppid() is 0 here, and ContainerStart waits for it.)
    _ = prctl(setParentDeathSignal, UInt(SIGKILL), 0, 0, 0)
    for number in [SIGTERM, SIGINT, SIGHUP] { signal(number, SIG_DFL) }
    if mount("proc", "/proc", "proc", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), nil) != 0 { _exit(72) }
    execv(cArguments[0]!, cArguments)
    _exit(127)
}
say("pid1 \(child)")

var status: Int32 = 0
while waitpid(child, &status, 0) < 0 {
    if errno != EINTR { fail("waitpid") }
}
let signalled = (status & 0x7f) != 0 && (status & 0x7f) != 0x7f
if signalled {
    let number = status & 0x7f
    say("killed by signal \(number)")
    signal(number, SIG_DFL)
    kill(getpid(), number)
    exit(128 + number)  // only when the signal does not end a process by default
}
let code = (status >> 8) & 0xff
say("exited \(code)")
exit(code)
