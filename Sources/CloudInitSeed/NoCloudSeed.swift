/// cloud-init's NoCloud seed for one launch: `meta-data`, `user-data` and `network-config` on a
/// small read-only ISO 9660 disk labelled `cidata`, built in memory (no tool, no shell).
///
/// Pure: the inputs are values, the output bytes; writing the file is the launcher's business.
package struct NoCloudSeed: Sendable, Equatable {
    /// The largest seed kvm-launch builds (the whole image): user data beyond it is an error.
    package static let maximumBytes = 4 * 1024 * 1024

    /// `instance-id`: cloud-init runs its per-instance modules (SSH host keys, users) again when it changes.
    package var instanceID: String
    /// `local-hostname`.
    package var hostname: String?
    package var userData: UserData
    package var network: NetworkConfig

    package init(instanceID: String, hostname: String?, userData: UserData, network: NetworkConfig) {
        self.instanceID = instanceID
        self.hostname = hostname
        self.userData = userData
        self.network = network
    }

    /// Why no seed can be built. Never repeats the user data.
    package enum Problem: Error, Equatable, CustomStringConvertible {
        case userData(UserData.Problem)
        case tooLarge(bytes: Int)
        case badHostname
        case rendering(String)

        package var description: String {
            switch self {
            case .userData(let problem): return problem.description
            case .tooLarge(let bytes):
                return "the cloud-init seed would be \(bytes) bytes, more than the \(NoCloudSeed.maximumBytes / 1024 / 1024) MiB limit; shorten CLOUD_INIT_USER_DATA"
            case .badHostname: return "the host name for cloud-init's local-hostname must be 1–63 letters, digits, - or ."
            case .rendering(let detail): return "cannot build the cloud-init seed: \(detail)"
            }
        }
    }

    /// A stable instance id: the same for the same host name and disk (restarts of one container
    /// with its volume), new when the disk file is replaced. `disk` is the image's device and inode.
    package static func instanceID(hostname: String?, disk: (device: UInt64, inode: UInt64)?) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a 64
        func mix(_ bytes: some Sequence<UInt8>) {
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
            hash = (hash ^ 0xFF) &* 0x0000_0100_0000_01B3  // field separator
        }
        mix((hostname ?? "").utf8)
        if let disk {
            mix((0..<8).map { UInt8((disk.device >> (8 * $0)) & 0xFF) })
            mix((0..<8).map { UInt8((disk.inode >> (8 * $0)) & 0xFF) })
        }
        let hex = String(hash, radix: 16)
        return "iid-kvm-launch-" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The three files, as written on the seed.
    package func files() throws(Problem) -> [ISO9660Image.File] {
        if let hostname {
            guard (1...63).contains(hostname.utf8.count),
                  hostname.utf8.allSatisfy({ $0 < 0x80 && (Character(UnicodeScalar($0)).isLetter || Character(UnicodeScalar($0)).isNumber || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".")) })
            else { throw .badHostname }
        }
        var metaData = "instance-id: \(instanceID)\n"
        if let hostname { metaData += "local-hostname: \(hostname)\n" }
        let user: String
        do { user = try userData.render() } catch { throw .userData(error) }
        let network = self.network.yaml()
        return [
            ISO9660Image.File(name: "meta-data", contents: Array(metaData.utf8)),
            ISO9660Image.File(name: "user-data", contents: Array(user.utf8)),
            ISO9660Image.File(name: "network-config", contents: Array(network.utf8)),
        ]
    }

    /// The seed disk's bytes (ISO 9660, label `cidata`).
    package func image() throws(Problem) -> [UInt8] {
        let files = try files()
        let size = files.reduce(0) { $0 + $1.contents.count }
        guard size <= Self.maximumBytes else { throw .tooLarge(bytes: size) }
        do {
            let bytes = try ISO9660Image(label: "cidata", files: files).bytes()
            guard bytes.count <= Self.maximumBytes + 64 * 1024 else { throw Problem.tooLarge(bytes: bytes.count) }
            return bytes
        } catch let problem as Problem {
            throw problem
        } catch {
            throw .rendering("\(error)")
        }
    }

    /// What `--dry-run` and logs show: the meta-data and network-config in full, the user data only
    /// as its size (it may hold secrets).
    package func redactedSummary() -> String {
        let userBytes = (try? userData.render())?.utf8.count ?? 0
        var lines = ["instance-id: \(instanceID)"]
        if let hostname { lines.append("local-hostname: \(hostname)") }
        lines.append("user-data: \(userBytes) bytes (redacted)" + (userData.sshAuthorizedKeys.isEmpty ? "" : ", \(userData.sshAuthorizedKeys.count) SSH key(s)"))
        lines.append("network-config: \(network.interfaces.count) NIC(s) matched by MAC")
        return lines.joined(separator: "\n")
    }
}
