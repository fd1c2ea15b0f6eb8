import KVMLauncher

// `kvm-launch`: the container's entrypoint, without libvirt (VM_BACKEND=libvirt execs `kvm-launch-libvirt`).
await Launcher.main(libvirt: nil)
