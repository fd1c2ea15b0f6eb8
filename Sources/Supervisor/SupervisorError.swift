import SystemPackage

/// A supervision failure. Each description is one line that says what to do.
package enum SupervisorError: Error, Equatable, CustomStringConvertible {
    case invalidFileDescriptor(Int32)
    case duplicateChildFileDescriptor(Int32)
    case spawnFailed(executable: String, errno: Errno)
    case waitFailed(reason: String)
    case signalSetupFailed(errno: Errno)
    case signalsAlreadyInstalled
    case subreaperFailed(errno: Errno)

    package var description: String {
        switch self {
        case let .invalidFileDescriptor(fd):
            "descriptor \(fd) cannot be passed to the child because it is not open (or negative): open it before starting QEMU"
        case let .duplicateChildFileDescriptor(fd):
            "two descriptors are mapped to child descriptor \(fd): give each one its own number"
        case let .spawnFailed(executable, reason):
            "cannot start \(executable) (\(reason)): check that the binary exists and is executable"
        case let .waitFailed(reason):
            "waiting for the child failed (\(reason)): something else in this process reaps children; let the supervisor do it"
        case let .signalSetupFailed(reason):
            "cannot install the SIGTERM/SIGINT handlers (\(reason)): the container cannot be stopped gracefully"
        case .signalsAlreadyInstalled:
            "stop signals are already being handled in this process: install them once and share the stream"
        case let .subreaperFailed(reason):
            "cannot become a child subreaper (\(reason)): orphaned processes will not be reaped here"
        }
    }
}
