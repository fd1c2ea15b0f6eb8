import KVMLauncher

// `kvm-launch`: the container's entrypoint, without libvirt (VM_BACKEND=libvirt execs `kvm-launch-libvirt`).
// A synchronous main: the launcher runs on its own executor on this thread, never on libdispatch's.
Launcher.run(libvirt: nil)
