/// kvm-launch's defaults, defined once: the environment parser (`LaunchConfiguration`), the QEMU
/// argument builder, the supervisor's shutdown policy and the run directory all read them here.
package enum LaunchDefaults {
    /// Guest memory when neither `VM_MEMORY` nor `KVM_CPU_OPTS` sets it, in MiB.
    package static let memoryMiB = 1024
    /// vCPUs when neither `VM_CPUS` nor `KVM_CPU_OPTS` sets them.
    package static let vcpus = 1
    /// Seconds between the ACPI power-off request and a forced stop (`VM_SHUTDOWN_TIMEOUT`).
    package static let shutdownTimeoutSeconds = 20
    /// Where the QMP socket and the private macvtap nodes live (`KVM_LAUNCH_RUN_DIR`).
    package static let runDirectory = "/run/kvm-launch"
}
