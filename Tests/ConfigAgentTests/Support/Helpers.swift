import ArgumentParser
import Foundation
import Logging
import TestSupport

@testable import ConfigAgent

/// Parses and runs `kvm-launch config ARGUMENTS…` in-process with the given environment.
func runConfigCommand(
    _ arguments: [String],
    environment: [String: String] = ["PATH": "/usr/bin:/bin"]
) async throws -> (out: OutputCollector, err: OutputCollector) {
    let out = OutputCollector()
    let err = OutputCollector()
    let context = CommandContext(environment: environment, out: { out.append($0) }, err: { err.append($0) })
    var command = try ConfigCommand.parseAsRoot(arguments)
    try await CommandContext.$current.withValue(context) {
        if var asyncCommand = command as? AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try command.run()
        }
    }
    return (out, err)
}

/// A tree of `count` settings plus a GENERATION variable, every value marked with `generation`.
func generationTree(_ generation: Int, count: Int) -> ConfigTree {
    var tree = ConfigTree()
    tree[.general("GENERATION")] = "\(generation)"
    let file = ConfigFileID(role: .compute, service: "svc", file: "svc.conf")
    for index in 0..<count {
        let key = SettingKey(file: file, section: "s\(index % 7)", key: "k\(index)")
        tree[.setting(key)] = "gen-\(generation)-value-\(index)=with=equals"
    }
    return tree
}
