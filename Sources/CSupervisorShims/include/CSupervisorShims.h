// Thin C boundary for the few process-control calls Swift cannot import
// directly: variadic prctl(2), glibc's posix_spawn closefrom action (guarded by
// _GNU_SOURCE), and an async-signal-safe signal handler.
#ifndef KVM_LAUNCH_SUPERVISOR_SHIMS_H
#define KVM_LAUNCH_SUPERVISOR_SHIMS_H

#include <spawn.h>

/// Marks the calling process as a child subreaper (PR_SET_CHILD_SUBREAPER):
/// orphaned descendants are re-parented to it instead of to PID 1.
/// Returns 0 on success, -1 with errno set on failure.
int kvml_set_child_subreaper(void);

/// Returns 1 when the calling process is a child subreaper, 0 when not, -1 on error.
int kvml_is_child_subreaper(void);

/// Adds "close every descriptor >= from" to a posix_spawn file-actions object.
/// Returns 0 or an errno value (like the other posix_spawn_file_actions calls).
int kvml_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from);

/// Creates the self-pipe for ``kvml_install_signal_pipe``: both ends close-on-exec,
/// the write end non-blocking so the signal handler can never block.
/// Returns 0 on success, -1 with errno set on failure.
int kvml_make_signal_pipe(int fds[2]);

/// Installs, for each signal in `signals`, a handler that writes the signal
/// number as one byte to `write_fd` (the self-pipe trick). The handler only calls
/// write(2) and preserves errno, so it is async-signal-safe. SA_RESTART is set.
/// Returns 0 on success, -1 with errno set when a sigaction call fails.
int kvml_install_signal_pipe(int write_fd, const int *signals, int count);

/// Creates an anonymous memory file (memfd_create(2), close-on-exec), e.g. for a disk image that
/// exists only as a descriptor handed to QEMU. Returns the descriptor, or -1 with errno set.
int kvml_memfd_create(const char *name);

#endif
