import KVMLauncher

// `kvm-launch-libvirt`: the launcher with the libvirt backend (the `kvm-launch:libvirt` image). `kvm-launch`
// execs it with the same arguments and environment when VM_BACKEND=libvirt; it runs both backends.
await Launcher.main(libvirt: LibvirtProvider())
