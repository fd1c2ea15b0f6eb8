import Logging

/// The environment the launcher configures itself from: the container's
/// environment merged with etcd's `general/` variables and, with `ETCD_ROLE`,
/// that role's `ROLE/NAME` variables (which win over `general/`).
///
/// When the container environment has no `ETCD_ENDPOINTS` (see
/// ``EtcdSettings/fromEnvironment(_:)``) it is returned unchanged and etcd is not
/// contacted. Otherwise every `general/` variable is added, and a name set in
/// both places keeps the **container's** value (``EnvironmentPrecedence``), so
/// `docker run -e AUTO_ATTACH=no` overrides etcd. Call it before the network is
/// taken over: etcd is reached through the container's own interfaces.
///
/// - Throws: ``EtcdSettingsError`` for unusable `ETCD_*` variables, ``EtcdError``
///   when etcd cannot be read (the launcher should stop: it was told to use etcd).
package func launcherEnvironment(
    container: [String: String],
    logger: Logger = Logger(label: "kvm-launch.config")
) async throws -> [String: String] {
    guard let settings = try EtcdSettings.fromEnvironment(container) else { return container }
    let role = try ConfigRole.named(container["ETCD_ROLE"])
    let general = try await EtcdClient.withClient(settings: settings, logger: logger) { client in
        try await ConfigStore(client: client, logger: logger).readEnvironment(role: role).variables
    }
    let overridden = general.keys.filter { container[$0] != nil }.sorted()
    let added = general.keys.filter { container[$0] == nil }.sorted()
    logger.info(
        "settings from etcd general/",
        metadata: [
            "prefix": "\(settings.prefix)",
            "added": "\(added.joined(separator: ","))",
            "kept_from_container": "\(overridden.joined(separator: ","))",
        ]
    )
    return EnvironmentPrecedence.merge(general: general, container: container)
}
