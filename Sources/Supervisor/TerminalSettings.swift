#if canImport(Glibc)
import Glibc
#endif

/// The settings (termios) of the terminal on a descriptor, saved before QEMU runs and put back
/// when kvm-launch exits.
///
/// QEMU's stdio console switches the terminal to raw mode (and clears ISIG, so Ctrl-C is a byte
/// for the guest). QEMU restores it when it exits normally, but not when it is killed (SIGKILL
/// after the stop timeouts, a crash): then `docker run -t`'s or `kubectl attach`'s terminal would
/// stay raw. The launcher saves the settings first and puts them back on every way out.
package struct TerminalSettings: @unchecked Sendable {  // termios is plain data
    package let descriptor: Int32
    let saved: termios

    /// The current settings of `descriptor`, or nil when it is not a terminal.
    package static func save(descriptor: Int32 = STDIN_FILENO) -> TerminalSettings? {
        guard isatty(descriptor) == 1 else { return nil }
        var settings = termios()
        guard tcgetattr(descriptor, &settings) == 0 else { return nil }
        return TerminalSettings(descriptor: descriptor, saved: settings)
    }

    /// Puts the saved settings back (after pending output is written). Returns whether it worked.
    @discardableResult
    package func restore() -> Bool {
        var settings = saved
        // A background process writing termios would be stopped by SIGTTOU; kvm-launch is not
        // stopped by that, it just goes on (PID 1 ignores it anyway).
        let previous = signal(SIGTTOU, SIG_IGN)
        defer { signal(SIGTTOU, previous) }
        return tcsetattr(descriptor, TCSADRAIN, &settings) == 0
    }
}
