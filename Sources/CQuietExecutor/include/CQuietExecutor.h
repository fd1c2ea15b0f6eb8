// kvm-launch's own executor for Swift concurrency (see quiet_executor.c and Sources/KVMLauncher):
// linked into the kvm-launch executable only, it installs itself before main() through the Swift
// runtime's executor hooks, so libdispatch's thread pool (and its one-second monitor timer) is never used.
#ifndef KVM_LAUNCH_QUIET_EXECUTOR_H
#define KVM_LAUNCH_QUIET_EXECUTOR_H

/// 1 when the quiet executor's hooks are in place (they are from before main()), else 0.
int kvml_quiet_executor_installed(void);

#endif
