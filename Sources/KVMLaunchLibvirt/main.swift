import KVMLauncher

// `kvm-launch-libvirt`: the launcher with the libvirt backend (the `kvm-launch:libvirt` image). `kvm-launch`
// execs it with the same arguments and environment when VM_BACKEND=libvirt; it runs both backends.
// A synchronous main: the launcher runs on its own executor on this thread, never on libdispatch's.
Launcher.run(libvirt: LibvirtProvider())
