import NetworkTypes

/// Everything kvm-launch needs to know before it touches the network, validated up front.
///
/// Built from the container's environment (after the config agent has merged etcd's `general/`
/// variables into it) by ``init(environment:arguments:)``, which reports every problem at once
/// in a ``ConfigurationError`` instead of stopping at the first.
package struct LaunchConfiguration: Sendable, Equatable, Codable {
    /// Which container interfaces the VM gets (`AUTO_ATTACH`, `ATTACH_IFACES`).
    package enum Selection: Sendable, Equatable, Codable {
        /// `AUTO_ATTACH=yes`: every interface except loopback, bridges and their ports, down links and
        /// kvm-launch's own links, by interface index.
        case automatic
        /// `AUTO_ATTACH=no`: exactly these names, in this order (empty: the VM has no NIC).
        case named([String])
    }

    /// How an interface is handed to the VM.
    package enum NetworkMode: String, Sendable, Equatable, Codable {
        /// A macvtap in bridge mode on the interface (default).
        case macvtap
        /// A Linux bridge with the interface and a tap as ports (`USE_NET_BRIDGES=yes`).
        case bridge
    }

    /// Which address the container keeps on each interface to reach the VM.
    package enum ContainerSideAddress: String, Sendable, Equatable, Codable {
        /// A deterministic 169.254.0.0/16 address per interface: cannot collide with anything.
        case linkLocal = "link-local"
        /// The old container's trick: widen the prefix by one bit and flip a host bit. Takes
        /// addresses the container does not own; opt-in only.
        case widenPrefix = "widen-prefix"
    }

    /// Hardware acceleration choice (`VM_ACCEL`).
    /// `CLOUD_INIT`: `auto` builds a seed only when there is something to put in it besides the network
    /// (user data or SSH keys), `yes` always, `no` never.
    package enum CloudInit: String, Sendable, Equatable, Codable {
        case auto, yes, no
    }

    package enum Acceleration: String, Sendable, Equatable, Codable {
        case auto, kvm, tcg
    }

    /// How the VM is run (`VM_BACKEND`).
    package enum Backend: String, Sendable, Equatable, Codable {
        /// kvm-launch starts and supervises QEMU itself (the default).
        case qemu
        /// A private libvirtd runs the same VM as a transient domain, manageable with `virsh`.
        case libvirt
    }

    /// Options of the container this replaces, kept as words for the QEMU step.
    package struct LegacyOptions: Sendable, Equatable, Codable {
        /// `KVM_OPTS`: extra QEMU words, placed before the container's CMD arguments.
        package var kvmOptions: [String] = []
        /// `KVM_CPU_OPTS`: replaces the memory/CPU words (`-m`, `-smp`, `-cpu`).
        package var cpuOptions: [String]? = nil
        /// `KVM_BLK_OPTS`: replaces the disk words.
        package var blockOptions: [String]? = nil
        /// `KVM_VIDEO_OPTS`: replaces the display words.
        package var videoOptions: [String]? = nil
        package init() {}
    }

    /// `nil` when `AUTO_ATTACH` is unset: enough for `--list-ifaces`, not for a launch.
    package var selection: Selection?
    /// `SELECTED_NETWORK`: which address goes to the VM when an interface has several.
    package var selectedNetwork: IPv4Interface?
    /// The IPv6 prefix in `SELECTED_NETWORK`: which global IPv6 addresses go to the VM.
    package var selectedNetworkIPv6: IPv6Interface?
    package var networkMode: NetworkMode = .macvtap
    package var containerSideAddress: ContainerSideAddress = .linkLocal
    /// `ENABLE_DHCP`: serve the VM its address (default yes).
    package var dhcpEnabled = true
    /// `DEBUG`: verbose logging.
    package var debug = false
    /// `DISABLE_VGA=no` turns graphics on; default is a serial console only.
    package var graphics = false
    /// `DNS_SERVERS`: overrides the name servers from `/etc/resolv.conf`.
    package var dnsServers: [IPv4Address]?
    /// `LAUNCHER`: another QEMU binary (name or path).
    package var qemuBinary: String?
    /// `VM_MEMORY`, MiB.
    package var memoryMiB = LaunchDefaults.memoryMiB
    /// `VM_CPUS`.
    package var cpus = LaunchDefaults.vcpus
    /// `VM_NET_QUEUES`: queue pairs per virtio-net NIC (one tap/macvtap descriptor per queue). nil
    /// means the default, ``netQueues``: the vCPU count capped at ``defaultNetQueuesCap``.
    package var netQueuesSetting: Int?
    /// Queue pairs each NIC gets: `VM_NET_QUEUES`, else the vCPU count capped at 8. 1 is the
    /// single-queue layout (one `fd=` per NIC).
    package var netQueues: Int { netQueuesSetting ?? min(max(cpus, 1), Self.defaultNetQueuesCap) }
    /// The default's cap: more queue pairs than this rarely help a tap backend.
    package static let defaultNetQueuesCap = 8
    /// What `VM_NET_QUEUES` accepts.
    package static let netQueuesRange = 1...16
    package var acceleration: Acceleration = .auto
    /// `VM_BACKEND`: `qemu` (default) or `libvirt`.
    package var backend: Backend = .qemu
    /// `VM_IMAGE`: the boot disk; nil means `/image/image.qcow2`, else the old `/image/image`.
    package var imagePath: String?
    /// `VM_IMAGE_FORMAT`: the disk's format as stated by the operator (one of ``imageFormats``);
    /// nil means "from the file name" (see the QEMU target's `DiskImage`).
    package var imageFormat: String?
    /// `VM_IMAGE_BACKING=allow`: backing and external data files may be anywhere; by default they
    /// must resolve inside the image's own folder.
    package var imageBackingAnywhere = false
    /// `KVM_LAUNCH_RUN_DIR`: where the QMP socket and the private macvtap nodes live (absolute).
    package var runDirectory = LaunchConfiguration.defaultRunDirectory
    /// `VM_SHUTDOWN_TIMEOUT`, seconds between the ACPI power-off request and a forced stop.
    package var shutdownTimeoutSeconds = LaunchDefaults.shutdownTimeoutSeconds
    /// `VM_HOSTNAME`: the host name the DHCP server gives the VM (default: the container's).
    package var hostname: String?
    package var legacy = LegacyOptions()
    /// `CLOUD_INIT`: whether the VM gets a NoCloud seed disk.
    package var cloudInit: CloudInit = .auto
    /// `CLOUD_INIT_USER_DATA` as given: a path inside the container (absolute, one line) or the user data itself.
    /// Never echoed: it may hold secrets.
    package var cloudInitUserData: String?
    /// `SSH_AUTHORIZED_KEYS`: public keys, one per line, for the guest's default user.
    package var sshAuthorizedKeys: String?
    /// `CLOUD_INIT_INSTANCE_ID`: overrides the instance id derived from the host name and the disk.
    package var cloudInitInstanceID: String?
    /// The container's CMD arguments, appended verbatim to QEMU's.
    package var extraArguments: [String] = []
    /// Things worth saying that are not errors (ignored legacy variables, …).
    package var warnings: [String] = []

    /// The documented defaults with no selection.
    package init() {}

    /// `KVM_LAUNCH_RUN_DIR` when unset.
    package static let defaultRunDirectory = LaunchDefaults.runDirectory
    /// The QMP socket's name inside ``runDirectory``.
    package static let qmpSocketName = "qmp.sock"
    /// The longest unix socket path Linux accepts (`sun_path` is 108 bytes with its terminating zero).
    package static let maximumSocketPathBytes = 107
    /// The formats `VM_IMAGE_FORMAT` accepts (QEMU's driver names).
    package static let imageFormats = ["raw", "qcow2", "qcow", "qed", "vmdk", "vdi", "vhdx", "vpc"]
    /// The most name servers one DHCP answer carries (option 6: 255 bytes of 4-byte addresses).
    package static let maximumNameServers = 63
    /// Guest memory above this is more than an x86-64 guest can address (52-bit physical addresses).
    package static let maximumMemoryMiB = 1 << 32

    /// The QMP socket: ``runDirectory``/qmp.sock.
    package var qmpSocketPath: String { "\(runDirectory)/\(Self.qmpSocketName)" }

    /// Whether this configuration can launch a VM (it has a selection).
    package var canLaunch: Bool { selection != nil }

    /// Reads the environment, validating everything before returning.
    ///
    /// - Parameters:
    ///   - environment: the process environment (`ProcessInfo.processInfo.environment`).
    ///   - arguments: the container's CMD arguments meant for QEMU.
    ///   - requireSelection: when false (listing), a missing `AUTO_ATTACH` is not an error.
    package init(environment: [String: String], arguments: [String] = [], requireSelection: Bool = true) throws(ConfigurationError) {
        var reader = EnvironmentReader(environment: environment)
        self.init()
        extraArguments = arguments

        switch reader.bool("AUTO_ATTACH") {
        case .some(true):
            selection = .automatic
            if let names = reader.string("ATTACH_IFACES"), !names.isEmpty {
                warnings.append("ATTACH_IFACES is ignored because AUTO_ATTACH=yes attaches every interface")
            }
        case .some(false):
            selection = .named(reader.list("ATTACH_IFACES"))
        case nil:
            let blank = (reader.string("AUTO_ATTACH") ?? "").allSatisfy { $0 == " " }
            if blank && requireSelection {
                reader.problem("AUTO_ATTACH", "is not set; set AUTO_ATTACH=yes to attach every interface, or AUTO_ATTACH=no with ATTACH_IFACES=\"eth0 eth1\"")
            }
        }
        if case .named(let names) = selection {
            var seen = Set<String>()
            for name in names where !seen.insert(name).inserted {
                reader.problem("ATTACH_IFACES", "names \(Self.quoted(name)) twice; list each interface once")
            }
            for name in names where !LaunchConfiguration.isValidInterfaceName(name) {
                reader.problem("ATTACH_IFACES", "has \(Self.quoted(name)), which is not an interface name (1 to 15 characters, no '/', ':' or blanks)")
            }
        }

        if let text = reader.string("SELECTED_NETWORK"), !text.isEmpty {
            // At most one IPv4 and one IPv6 ADDR/PREFIX, space- or comma-separated.
            let words = text.split(whereSeparator: { $0 == " " || $0 == "," })
            var problem: String?
            for word in words {
                if let network = IPv4Interface(word), selectedNetwork == nil {
                    selectedNetwork = network
                } else if let network = IPv6Interface(word), selectedNetworkIPv6 == nil {
                    selectedNetworkIPv6 = network
                } else {
                    problem = IPv4Interface(word) != nil || IPv6Interface(word) != nil
                        ? "=\(Self.quoted(text)) names two networks of one family; give at most one IPv4 and one IPv6 ADDR/PREFIX"
                        : "=\(Self.quoted(text)) is not an IPv4 or IPv6 ADDR/PREFIX such as 10.42.0.7/16 or fd00:1::/64"
                }
            }
            if words.isEmpty { problem = "=\(Self.quoted(text)) is not an IPv4 or IPv6 ADDR/PREFIX such as 10.42.0.7/16 or fd00:1::/64" }
            if let problem {
                selectedNetwork = nil
                selectedNetworkIPv6 = nil
                reader.problem("SELECTED_NETWORK", problem)
            }
        }
        if let bridges = reader.bool("USE_NET_BRIDGES") { networkMode = bridges ? .bridge : .macvtap }
        if let dhcp = reader.bool("ENABLE_DHCP") { dhcpEnabled = dhcp }
        if let debug = reader.bool("DEBUG") { self.debug = debug }
        if let disableVGA = reader.bool("DISABLE_VGA") { graphics = !disableVGA }

        if let text = reader.string("DNS_SERVERS"), !text.isEmpty {
            var servers: [IPv4Address] = []
            let items = reader.list("DNS_SERVERS")
            if items.isEmpty {
                reader.problem("DNS_SERVERS", "=\(Self.quoted(text)) names no server; give IPv4 addresses separated by spaces or commas, or unset it to use /etc/resolv.conf")
            }
            for item in items {
                guard let address = IPv4Address(item) else {
                    reader.problem("DNS_SERVERS", "has \(Self.quoted(item)), which is not an IPv4 address")
                    continue
                }
                if address.isLoopback {
                    reader.problem("DNS_SERVERS", "has \(address), which the VM cannot reach (it is the container's own loopback); give a name server on the network")
                } else if address.isUnspecified {
                    reader.problem("DNS_SERVERS", "has 0.0.0.0, which means \"no address\" and is no name server; give a name server's IPv4 address")
                } else if address == IPv4Address(255, 255, 255, 255) || (224...239).contains(address.octets[0]) {
                    reader.problem("DNS_SERVERS", "has \(address), a broadcast or multicast address, which is no name server; give a name server's IPv4 address")
                } else {
                    servers.append(address)
                }
            }
            if servers.count > Self.maximumNameServers {
                reader.problem("DNS_SERVERS", "lists \(servers.count) servers, more than one DHCP answer carries (\(Self.maximumNameServers)); list fewer")
            }
            dnsServers = servers
        }

        if let launcher = reader.string("LAUNCHER"), !launcher.isEmpty {
            if launcher.contains(where: { $0 == " " || $0.isControl }) {
                reader.problem("LAUNCHER", "=\(Self.quoted(launcher)) must name one QEMU binary (a name in PATH or a path), without arguments; put arguments in KVM_OPTS or the container's CMD")
            } else {
                qemuBinary = launcher
            }
        }
        if let memory = reader.string("VM_MEMORY"), !memory.isEmpty {
            if let mib = LaunchConfiguration.parseMemory(memory), mib <= Self.maximumMemoryMiB {
                memoryMiB = mib
            } else if LaunchConfiguration.parseMemory(memory) != nil {
                reader.problem("VM_MEMORY", "=\(Self.quoted(memory)) is more memory than any machine has (an x86-64 guest addresses at most 4P); give the guest's real size, e.g. 2G")
            } else {
                reader.problem("VM_MEMORY", "=\(Self.quoted(memory)) is not a memory size; use MiB (2048) or a unit (512M, 4G), at least 64M")
            }
        }
        if let count = reader.integer("VM_CPUS", range: 1...255, hint: "a number of vCPUs from 1 to 255") { cpus = count }
        if let queues = reader.integer("VM_NET_QUEUES", range: Self.netQueuesRange,
                                       hint: "a number of queue pairs per NIC from 1 to \(Self.netQueuesRange.upperBound) (1: single queue)") {
            netQueuesSetting = queues
        }
        if let seconds = reader.integer("VM_SHUTDOWN_TIMEOUT", range: 0...3600, hint: "seconds from 0 to 3600") { shutdownTimeoutSeconds = seconds }
        if let accel = reader.string("VM_ACCEL"), !accel.isEmpty {
            if let value = Acceleration(rawValue: accel.lowercased()) { acceleration = value } else {
                reader.problem("VM_ACCEL", "=\(Self.quoted(accel)) is not one of auto, kvm, tcg")
            }
        }
        if let name = reader.string("VM_BACKEND"), !name.isEmpty {
            if let value = Backend(rawValue: name.lowercased()) { backend = value } else {
                reader.problem("VM_BACKEND", "=\"\(name)\" is not one of qemu, libvirt")
            }
        }
        if let image = reader.string("VM_IMAGE"), !image.isEmpty {
            if !image.hasPrefix("/") {
                reader.problem("VM_IMAGE", "=\(Self.quoted(image)) must be an absolute path such as /image/image.qcow2")
            } else if image.contains(where: \.isControl) {
                reader.problem("VM_IMAGE", "=\(Self.quoted(image)) has control characters; give the image's plain path")
            } else {
                imagePath = image
            }
        }
        if let format = reader.string("VM_IMAGE_FORMAT"), !format.isEmpty {
            if Self.imageFormats.contains(format.lowercased()) { imageFormat = format.lowercased() } else {
                reader.problem("VM_IMAGE_FORMAT", "=\(Self.quoted(format)) is not one of \(Self.imageFormats.joined(separator: ", "))")
            }
        }
        if let backing = reader.string("VM_IMAGE_BACKING"), !backing.isEmpty {
            switch backing.lowercased() {
            case "allow": imageBackingAnywhere = true
            case "inside-folder": imageBackingAnywhere = false
            default:
                reader.problem("VM_IMAGE_BACKING", "=\(Self.quoted(backing)) is not one of inside-folder, allow")
            }
        }
        if let name = reader.string("VM_HOSTNAME"), !name.isEmpty {
            if let reason = Self.hostnameProblem(name) {
                reader.problem("VM_HOSTNAME", "=\(Self.quoted(name)) \(reason); use letters, digits and '-' in dot-separated labels of 1 to 63 characters, 253 in all")
            } else {
                hostname = name
            }
        }
        if let directory = reader.string("KVM_LAUNCH_RUN_DIR"), !directory.isEmpty {
            let socket = "\(directory)/\(Self.qmpSocketName)"
            if !directory.hasPrefix("/") {
                reader.problem("KVM_LAUNCH_RUN_DIR", "=\(Self.quoted(directory)) must be an absolute path such as /run/kvm-launch")
            } else if directory.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) || directory.contains(where: \.isControl) {
                reader.problem("KVM_LAUNCH_RUN_DIR", "=\(Self.quoted(directory)) must be a plain path without '.', '..' or control characters")
            } else if socket.utf8.count > Self.maximumSocketPathBytes {
                reader.problem("KVM_LAUNCH_RUN_DIR", "is \(directory.utf8.count) bytes long: the QMP socket path inside would be \(socket.utf8.count) bytes, more than a unix socket path may have (\(Self.maximumSocketPathBytes)); choose a shorter directory")
            } else {
                runDirectory = directory
            }
        }
        if let mode = reader.string("CONTAINER_SIDE_ADDRESS"), !mode.isEmpty {
            if let value = ContainerSideAddress(rawValue: mode.lowercased()) { containerSideAddress = value } else {
                reader.problem("CONTAINER_SIDE_ADDRESS", "=\(Self.quoted(mode)) is not one of link-local, widen-prefix")
            }
        }

        if let mode = reader.string("CLOUD_INIT"), !mode.isEmpty {
            if mode.lowercased() == "auto" { cloudInit = .auto } else if let on = reader.bool("CLOUD_INIT") { cloudInit = on ? .yes : .no }
        }
        if let userData = reader.string("CLOUD_INIT_USER_DATA"), !userData.isEmpty { cloudInitUserData = userData }
        if let keys = reader.string("SSH_AUTHORIZED_KEYS"), !keys.isEmpty { sshAuthorizedKeys = keys }
        if let id = reader.string("CLOUD_INIT_INSTANCE_ID"), !id.isEmpty {
            if id.utf8.count > 128 || id.contains(where: { $0.isWhitespace || $0.isControl || !$0.isASCII }) {
                reader.problem("CLOUD_INIT_INSTANCE_ID", "=\(Self.quoted(id)) must be 1 to 128 printable ASCII characters without blanks")
            } else {
                cloudInitInstanceID = id
            }
        }
        if cloudInit == .no && (cloudInitUserData != nil || sshAuthorizedKeys != nil) {
            warnings.append("CLOUD_INIT=no: CLOUD_INIT_USER_DATA and SSH_AUTHORIZED_KEYS are not given to the VM")
        }

        legacy.kvmOptions = reader.words("KVM_OPTS") ?? []
        legacy.cpuOptions = reader.words("KVM_CPU_OPTS")
        legacy.blockOptions = reader.words("KVM_BLK_OPTS")
        legacy.videoOptions = reader.words("KVM_VIDEO_OPTS")
        if let net = reader.string("KVM_NET_OPTS"), !net.isEmpty {
            reader.problem("KVM_NET_OPTS", "is no longer used: kvm-launch creates one virtio NIC per attached interface; unset it and put extra -device/-netdev options in the container's CMD")
        }
        if let dnsmasq = reader.string("DNSMASQ_OPTS"), !dnsmasq.isEmpty {
            warnings.append("DNSMASQ_OPTS is ignored: dnsmasq was replaced by kvm-launch's own DHCP server; use DNS_SERVERS, VM_HOSTNAME or ENABLE_DHCP=no instead")
        }
        for name in ["DNSMASQ_CONF_DIR", "DNSMASQ", "QEMU_CONF_DIR"] where reader.string(name) != nil {
            warnings.append("\(name) is ignored: kvm-launch writes no dnsmasq or QEMU configuration files")
        }

        guard reader.problems.isEmpty else { throw ConfigurationError(problems: reader.problems) }
    }

    /// Why `name` cannot be a host name (DHCP option 12, QEMU's `-name`), or nil when it can: RFC 1123 names,
    /// dot-separated labels of 1–63 letters, digits and `-` (not first or last), 253 bytes in all.
    package static func hostnameProblem(_ name: String) -> String? {
        if name.utf8.count > 253 { return "is \(name.utf8.count) bytes long, more than a host name may have (253)" }
        let trimmed = name.hasSuffix(".") ? String(name.dropLast()) : name
        for label in trimmed.split(separator: ".", omittingEmptySubsequences: false) {
            if label.isEmpty { return "has an empty label" }
            if label.utf8.count > 63 { return "has a label of \(label.utf8.count) bytes, more than 63" }
            if !label.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x2D }) {
                return "has characters a host name cannot have"
            }
            if label.hasPrefix("-") || label.hasSuffix("-") { return "has a label that starts or ends with '-'" }
        }
        return nil
    }

    /// `value` in double quotes, on one line: control characters, quotes and backslashes escaped
    /// (`\n`, `\t`, `\u{1b}`), so an error that echoes a value stays one line and shows what was there.
    package static func quoted(_ value: String) -> String {
        "\"" + escaped(value).replacingQuotes() + "\""
    }

    /// `text` with control characters (C0, DEL, C1, line and paragraph separators) written as escapes,
    /// and backslashes doubled when `backslashes` (off for text whose values are already escaped).
    package static func escaped(_ text: String, backslashes: Bool = true) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "\\" where backslashes: result += "\\\\"
            default:
                if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    result += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result
    }

    /// Linux interface names: 1–15 bytes, no `/`, `:` or white space.
    package static func isValidInterfaceName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 15 && name != "." && name != ".."
            && !name.contains(where: { $0 == "/" || $0 == ":" || $0.isWhitespace })
    }

    /// Parses `2048`, `2048M`, `2G`, `2GiB`, `512MB` into MiB; nil when malformed or under 64 MiB.
    package static func parseMemory(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: " ")
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let number = Int(digits) else { return nil }
        let unit = trimmed.dropFirst(digits.count).lowercased()
        let multiplier: Int
        switch unit {
        case "", "m", "mb", "mib": multiplier = 1
        case "g", "gb", "gib": multiplier = 1024
        case "t", "tb", "tib": multiplier = 1024 * 1024
        default: return nil
        }
        let (mib, overflow) = number.multipliedReportingOverflow(by: multiplier)
        guard !overflow, mib >= 64 else { return nil }
        return mib
    }
}

extension Character {
    /// A control character (C0, DEL, C1) or a line/paragraph separator: never part of a name or path.
    fileprivate var isControl: Bool {
        unicodeScalars.contains { $0.properties.generalCategory == .control || $0.value == 0x2028 || $0.value == 0x2029 }
    }
}

extension String {
    fileprivate func replacingQuotes() -> String {
        var result = ""
        for character in self { if character == "\"" { result += "\\\"" } else { result.append(character) } }
        return result
    }

    /// Without `blank` at either end. By index on the string itself: the reversed views this once
    /// went through were generic types whose metadata the runtime builds on first use (~0.1 ms of
    /// every launch's start-up).
    fileprivate func trimmingCharacters(in blank: Character) -> String {
        guard let first = firstIndex(where: { $0 != blank }), let last = lastIndex(where: { $0 != blank }) else { return "" }
        return String(self[first...last])
    }
}

/// One thing wrong with one variable.
package struct ConfigurationProblem: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The environment variable.
    package var variable: String
    /// What is wrong and what to do, completing a sentence that starts with the variable name.
    package var message: String
    package var description: String { message.hasPrefix("=") ? "\(variable)\(message)" : "\(variable) \(message)" }
}

/// Every problem found in the configuration, reported together.
package struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    package var problems: [ConfigurationProblem]
    package var description: String {
        let count = problems.count == 1 ? "" : " (\(problems.count) problems)"
        return "invalid configuration\(count): " + problems.map(\.description).joined(separator: "; ")
    }
}

/// Typed access to the environment that records problems instead of throwing.
struct EnvironmentReader {
    let environment: [String: String]
    var problems: [ConfigurationProblem] = []

    mutating func problem(_ variable: String, _ message: String) {
        problems.append(ConfigurationProblem(variable: variable, message: message))
    }

    func string(_ name: String) -> String? { environment[name] }

    /// yes/no, y/n, true/false, 1/0, on/off in any case; nil when unset or empty (and records a problem when malformed).
    mutating func bool(_ name: String) -> Bool? {
        guard let raw = environment[name] else { return nil }
        let text = raw.trimmingCharacters(in: " ").lowercased()
        switch text {
        case "": return nil
        case "yes", "y", "true", "1", "on": return true
        case "no", "n", "false", "0", "off": return false
        default:
            problem(name, "=\(LaunchConfiguration.quoted(raw)) is not a yes/no value; use yes or no (also y/n, true/false, 1/0, on/off)")
            return nil
        }
    }

    /// Items separated by blanks or commas.
    func list(_ name: String) -> [String] {
        (environment[name] ?? "").split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
    }

    mutating func integer(_ name: String, range: ClosedRange<Int>, hint: String) -> Int? {
        guard let raw = environment[name], !raw.isEmpty else { return nil }
        guard let value = Int(raw.trimmingCharacters(in: " ")), range.contains(value) else {
            problem(name, "=\(LaunchConfiguration.quoted(raw)) is not \(hint)")
            return nil
        }
        return value
    }

    mutating func words(_ name: String) -> [String]? {
        guard let raw = environment[name], !raw.trimmingCharacters(in: " ").isEmpty else { return nil }
        do {
            return try ShellWords.split(raw)
        } catch {
            problem(name, "has an \(error.description); quote each word fully")
            return nil
        }
    }
}
