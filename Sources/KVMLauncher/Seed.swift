import CSupervisorShims
import CloudInitSeed
import LaunchConfiguration
import NetAttach
import NetworkTypes
import SystemPackage
import QEMU

#if canImport(Glibc)
import Glibc
#endif

/// The cloud-init seed of one launch: decided and built in memory while planning (so bad user data is
/// refused before anything changes), handed to QEMU as a read-only descriptor of an anonymous memory
/// file. Nothing is written under `/run` or anywhere else.
struct SeedPreparation {
    var seed: NoCloudSeed
    /// The seed disk's bytes.
    var image: [UInt8]

    /// The seed for `plan`, or nil when `CLOUD_INIT` asks for none (`auto` without user data or keys).
    static func prepare(configuration: LaunchConfiguration, plan: AttachPlan, hostname: String?,
                        disk: OpenedDiskImage?) throws(LaunchFailure) -> SeedPreparation? {
        let wanted: Bool
        switch configuration.cloudInit {
        case .no: wanted = false
        case .yes: wanted = true
        case .auto: wanted = configuration.cloudInitUserData != nil || configuration.sshAuthorizedKeys != nil
        }
        guard wanted else { return nil }

        let keys: [String]
        do {
            keys = try UserData.parseKeys(configuration.sshAuthorizedKeys ?? "")
        } catch {
            throw LaunchFailure("\(error)")
        }
        let text = try configuration.cloudInitUserData.map { value throws(LaunchFailure) in try userDataText(value) }
        var identity: (device: UInt64, inode: UInt64)?
        if let descriptor = disk?.descriptors.first {
            var status = stat()
            if fstat(descriptor, &status) == 0 { identity = (UInt64(status.st_dev), UInt64(status.st_ino)) }
        }
        let seed = NoCloudSeed(
            instanceID: configuration.cloudInitInstanceID ?? NoCloudSeed.instanceID(hostname: hostname, disk: identity),
            hostname: hostname.map { String($0.split(separator: ".").first ?? Substring($0)) },
            userData: UserData(text: text, sshAuthorizedKeys: keys),
            network: networkConfig(plan))
        do {
            return SeedPreparation(seed: seed, image: try seed.image())
        } catch {
            throw LaunchFailure("\(error)")
        }
    }

    /// `CLOUD_INIT_USER_DATA`: an absolute one-line value is a file inside the container (read without
    /// blocking, regular files only, size-limited); anything else is the user data itself.
    static func userDataText(_ value: String) throws(LaunchFailure) -> String {
        guard value.hasPrefix("/"), !value.contains("\n") else { return value }
        let descriptor = open(value, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw LaunchFailure("CLOUD_INIT_USER_DATA names \(LaunchConfiguration.quoted(value)), which cannot be read: \(Errno.current)")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw LaunchFailure("CLOUD_INIT_USER_DATA names \(LaunchConfiguration.quoted(value)), which is not a regular file")
        }
        guard Int(status.st_size) <= NoCloudSeed.maximumBytes else {
            throw LaunchFailure("CLOUD_INIT_USER_DATA names a file of \(status.st_size) bytes, more than the \(NoCloudSeed.maximumBytes / 1024 / 1024) MiB a seed may hold")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = retryingOnInterrupt { read(descriptor, &buffer, buffer.count) }
            guard count >= 0 else { throw LaunchFailure("cannot read CLOUD_INIT_USER_DATA's file: \(Errno.current)") }
            if count == 0 { break }
            bytes += buffer[..<count]
            guard bytes.count <= NoCloudSeed.maximumBytes else {
                throw LaunchFailure("CLOUD_INIT_USER_DATA's file is larger than the \(NoCloudSeed.maximumBytes / 1024 / 1024) MiB a seed may hold")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `network-config` from the plan: what the DHCP answer and the IPv6 responder say, as static
    /// configuration per NIC.
    static func networkConfig(_ plan: AttachPlan) -> NetworkConfig {
        NetworkConfig(interfaces: plan.interfaces.map { interface in
            var nic = NetworkConfig.Interface(id: interface.name, mac: interface.guestMAC, mtu: interface.mtu)
            if let lease = interface.lease { addIPv4(lease, to: &nic) }
            if let ipv6 = interface.ipv6, ipv6.served {
                nic.addIPv6(addresses: ipv6.movedAddresses, router: ipv6.router, gateway: ipv6.gateway,
                            nameServers: ipv6.dnsServers, searchDomains: ipv6.searchDomains)
            }
            return nic
        })
    }

    /// The DHCPv4 answer's address, routes, name servers and search list.
    static func addIPv4(_ lease: PlannedLease, to nic: inout NetworkConfig.Interface) {
        nic.addresses = [lease.address.description]
        if let router = lease.router {
            nic.routes.append(.init(destination: "0.0.0.0/0", gateway: router.description))
        }
        for route in lease.staticRoutes {
            let gateway = route.gateway.flatMap { $0.isUnspecified ? nil : $0 }
            nic.routes.append(.init(
                destination: route.destination.description,
                gateway: gateway?.description,
                onLink: gateway.map { lease.address.prefixLength == 32 || !lease.address.contains($0) } ?? false,
                metric: route.metric == 0 ? nil : route.metric))
        }
        nic.nameServers = lease.dnsServers.map(\.description)
        nic.searchDomains = lease.searchDomains
    }

    /// What `--dry-run` shows: the redacted summary, then network-config as written.
    func reportLines() -> [String] {
        let network = (try? seed.network.yaml()) ?? ""
        return seed.redactedSummary().split(separator: "\n").map(String.init)
            + ["network-config:"] + network.split(separator: "\n").map { "  " + $0 }
    }

    /// The image as an anonymous memory file, opened read-only (QEMU's read-only open of `/dev/fdset/N`
    /// takes only a descriptor opened that way). The caller owns the returned descriptor.
    func readOnlyDescriptor() throws(LaunchFailure) -> Int32 {
        let writable = kvml_memfd_create("kvm-launch-seed")
        guard writable >= 0 else { throw LaunchFailure("cannot create the cloud-init seed in memory: \(Errno.current)") }
        defer { close(writable) }
        var written = 0
        while written < image.count {
            let count = retryingOnInterrupt { image[written...].withUnsafeBytes { write(writable, $0.baseAddress, $0.count) } }
            guard count > 0 else { throw LaunchFailure("cannot write the cloud-init seed in memory: \(Errno.current)") }
            written += count
        }
        let readOnly = open("/proc/self/fd/\(writable)", O_RDONLY | O_CLOEXEC)
        guard readOnly >= 0 else { throw LaunchFailure("cannot reopen the cloud-init seed read-only: \(Errno.current)") }
        return readOnly
    }
}
