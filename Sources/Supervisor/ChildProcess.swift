#if canImport(Glibc)
import Glibc
#endif
import CSupervisorShims
import NetworkTypes
import SystemPackage

/// A descriptor of the supervisor handed to the child at a chosen number.
package struct FileDescriptorMapping: Sendable, Equatable {
    /// The open descriptor in this process.
    package var parent: Int32
    /// The number the child sees it as.
    package var child: Int32

    package init(parent: Int32, child: Int32) {
        self.parent = parent
        self.child = child
    }

    /// Maps `parents` to consecutive child numbers starting at `first` (3 by
    /// default, right after stdin/stdout/stderr).
    package static func sequential(_ parents: [Int32], startingAt first: Int32 = 3) -> [FileDescriptorMapping] {
        parents.enumerated().map { FileDescriptorMapping(parent: $0.element, child: first + Int32($0.offset)) }
    }
}

/// What to run.
package struct ChildCommand: Sendable, Equatable {
    /// Absolute path of the program (no PATH search happens here).
    package var executable: String
    /// The arguments after argv[0], passed as they are: no shell is involved.
    package var arguments: [String]
    /// The complete environment; nil inherits this process's environment.
    package var environment: [String: String]?
    /// Descriptors the child gets, at the numbers given. Every other descriptor
    /// above 2 is closed in the child; 0, 1 and 2 are inherited (the console).
    package var fileDescriptors: [FileDescriptorMapping]

    package init(
        executable: String,
        arguments: [String] = [],
        environment: [String: String]? = nil,
        fileDescriptors: [FileDescriptorMapping] = []
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.fileDescriptors = fileDescriptors
    }
}

/// How a child process ended.
package enum ChildTermination: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32, coreDumped: Bool)

    /// Decodes a `waitpid` status (the WIFEXITED/WTERMSIG macros, which Swift does not import).
    package init(waitStatus status: Int32) {
        let signal = status & 0x7F
        if signal == 0 {
            self = .exited((status >> 8) & 0xFF)
        } else {
            self = .signaled(signal, coreDumped: status & 0x80 != 0)
        }
    }

    package var description: String {
        switch self {
        case let .exited(code): "exited with status \(code)"
        case let .signaled(signal, coreDumped):
            "killed by signal \(signal) (\(signalName(signal)))" + (coreDumped ? ", core dumped" : "")
        }
    }
}

func signalName(_ signal: Int32) -> String {
    switch signal {
    case SIGHUP: "SIGHUP"
    case SIGINT: "SIGINT"
    case SIGQUIT: "SIGQUIT"
    case SIGILL: "SIGILL"
    case SIGABRT: "SIGABRT"
    case SIGBUS: "SIGBUS"
    case SIGFPE: "SIGFPE"
    case SIGKILL: "SIGKILL"
    case SIGSEGV: "SIGSEGV"
    case SIGPIPE: "SIGPIPE"
    case SIGTERM: "SIGTERM"
    case SIGUSR1: "SIGUSR1"
    case SIGUSR2: "SIGUSR2"
    default: "signal \(signal)"
    }
}

/// Starts child processes with posix_spawn(3).
package enum ChildProcess {
    /// Spawns `command` and returns its pid. Does not wait for it.
    ///
    /// The child starts with every signal at its default disposition and an empty
    /// signal mask, whatever this process (or the calling thread) has set up, and
    /// stays in this process group so that it keeps the console as its terminal.
    package static func spawn(_ command: ChildCommand) throws(SupervisorError) -> pid_t {
        var targets = Set<Int32>()
        for mapping in command.fileDescriptors {
            guard mapping.child >= 0 else { throw .invalidFileDescriptor(mapping.child) }
            guard targets.insert(mapping.child).inserted else { throw .duplicateChildFileDescriptor(mapping.child) }
            guard fcntl(mapping.parent, F_GETFD) != -1 else { throw .invalidFileDescriptor(mapping.parent) }
        }

        // dup2(fd, fd) would leave close-on-exec set, and one mapping's source may
        // be another's target. Duplicating every source above all numbers in play
        // first makes each dup2 in the child a real copy onto a free number.
        let highest = max(2, targets.max() ?? 2, command.fileDescriptors.map(\.parent).max() ?? 2)
        var temporaries: [Int32] = []
        defer { temporaries.forEach { close($0) } }
        for mapping in command.fileDescriptors {
            let copy = fcntl(mapping.parent, F_DUPFD_CLOEXEC, highest + 1)
            guard copy >= 0 else { throw .spawnFailed(executable: command.executable, errno: .current) }
            temporaries.append(copy)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (mapping, copy) in zip(command.fileDescriptors, temporaries) {
            posix_spawn_file_actions_adddup2(&actions, copy, mapping.child)
        }
        let highestTarget = targets.max() ?? 2
        if highestTarget > 3 {
            for fd in 3..<highestTarget where !targets.contains(fd) && fcntl(fd, F_GETFD) != -1 {
                posix_spawn_file_actions_addclose(&actions, fd)
            }
        }
        kvml_spawn_file_actions_addclosefrom(&actions, max(3, highestTarget + 1))

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = CStringArray([command.executable] + command.arguments)
        var pid: pid_t = 0
        let result: Int32
        if let environment = command.environment {
            let envp = CStringArray(environment.keys.sorted().map { "\($0)=\(environment[$0]!)" })
            result = posix_spawn(&pid, command.executable, &actions, &attributes, argv.pointers, envp.pointers)
        } else {
            result = posix_spawn(&pid, command.executable, &actions, &attributes, argv.pointers, environ)
        }
        guard result == 0 else {
            throw .spawnFailed(executable: command.executable, errno: Errno(rawValue: result))
        }
        return pid
    }
}

/// A NULL-terminated array of C strings that lives as long as the value.
private final class CStringArray {
    let pointers: [UnsafeMutablePointer<CChar>?]

    init(_ strings: [String]) {
        pointers = strings.map { strdup($0) } + [nil]
    }

    deinit { pointers.forEach { free($0) } }
}
