// The one thing the libvirt backend needs that Swift cannot do safely: start a daemon in its own
// mount namespace (fork, then only system calls until execve). See Sources/LibvirtBackend/README.md.
#ifndef KVM_LAUNCH_LIBVIRT_SHIMS_H
#define KVM_LAUNCH_LIBVIRT_SHIMS_H

#include <sys/types.h>

/// A character-device node to create in the daemon's private /dev.
struct kvml_device_node {
    const char *name;   ///< file name under /dev, e.g. "tap12"
    dev_t device;       ///< major/minor
};

/// What the child does between fork and execve, in this order:
/// 1. a new session (setsid) with every signal unblocked;
/// 2. a private mount namespace (unshare CLONE_NEWNS, "/" made recursively private);
/// 3. when `dev_stage` is not NULL: a tmpfs on `dev_stage` holding a copy of /dev (device nodes made
///    with the same numbers, directories bind-mounted, symlinks copied) plus `nodes`, moved onto /dev;
/// 4. each `bind_sources[i]` bind-mounted on `bind_targets[i]` (the target made when missing);
/// 5. stdin from /dev/null, stdout and stderr to `output_fd`, every other descriptor closed;
/// 6. execve(path, argv, envp).
/// Returns the child's pid, or -1 with errno set; a failure in the child before execve is reported
/// as -1 too, with errno the child's and `*failed_step` (when not NULL) naming the step.
pid_t kvml_spawn_private_mounts(const char *path, char *const argv[], char *const envp[],
                                const char *const bind_sources[], const char *const bind_targets[], int bind_count,
                                const char *dev_stage, const struct kvml_device_node *nodes, int node_count,
                                int output_fd, const char **failed_step);

#endif
