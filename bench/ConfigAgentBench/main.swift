// ConfigAgentBench: loading and rendering a large configuration against a real etcd.
//
//   swift run -c release ConfigAgentBench [--keys N] [--runs N] [--baseline-runs N]
//
// Starts its own etcd (/usr/bin/etcd, Debian's etcd-server) on free loopback ports with a
// temporary data directory, and measures:
//   load      ConfigStore.load: the whole tree replaced in one (nested) transaction
//   baseline  the old loader's way: delete the tree, then one PUT request per key
//   render    one read of the whole tree and every file rendered into a directory
// Each is repeated; the median, min and max are printed, and the ratio of the baseline's
// median to the load's median (both measured in this run, on this machine).
import ConfigAgent
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

struct BenchError: Error, CustomStringConvertible {
    var description: String
}

struct Options {
    var keys = 10_000
    var runs = 5
    var baselineRuns = 3

    init(_ arguments: [String]) throws {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            guard let value = iterator.next().flatMap(Int.init), value > 0 else {
                throw BenchError(description: "usage: ConfigAgentBench [--keys N] [--runs N] [--baseline-runs N]")
            }
            switch argument {
            case "--keys": keys = value
            case "--runs": runs = value
            case "--baseline-runs": baselineRuns = value
            default: throw BenchError(description: "unknown option \(argument)")
            }
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard fd >= 0, ok else { throw BenchError(description: "no free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Starts etcd in `directory` and returns the process and its client endpoint once it answers.
func startEtcd(in directory: String) async throws -> (Process, EtcdEndpoint) {
    let client = try freePort()
    let peer = try freePort()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/etcd")
    process.arguments = [
        "--name", "bench", "--data-dir", directory + "/data",
        "--listen-client-urls", "http://127.0.0.1:\(client)", "--advertise-client-urls", "http://127.0.0.1:\(client)",
        "--listen-peer-urls", "http://127.0.0.1:\(peer)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peer)",
        "--initial-cluster", "bench=http://127.0.0.1:\(peer)",
        "--logger", "zap", "--log-outputs", directory + "/etcd.log", "--log-level", "warn",
    ]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    let endpoint = EtcdEndpoint(secure: false, host: "127.0.0.1", port: client)
    let settings = try EtcdSettings(endpoints: [endpoint], connectTimeout: .milliseconds(300), requestTimeout: .seconds(1))
    try await EtcdClient.withClient(settings: settings, logger: silent) { client in
        for _ in 0..<400 {
            guard process.isRunning else { throw BenchError(description: "etcd exited; see \(directory)/etcd.log") }
            if (try? await client.range(.prefix("/ready"))) != nil { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw BenchError(description: "etcd did not become ready")
    }
    return (process, endpoint)
}

func stopEtcd(_ process: Process) async {
    guard process.isRunning else { return }
    kill(process.processIdentifier, SIGTERM)
    for _ in 0..<250 where process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
}

let silent = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })

/// A tree of `keys` keys: 1% general variables, the rest spread over files of ~200 settings
/// that reference a general variable now and then. `generation` changes every value.
func makeTree(keys: Int, generation: Int) -> ConfigTree {
    var tree = ConfigTree()
    let generalCount = max(1, keys / 100)
    for index in 0..<generalCount {
        tree[.general("VAR_\(index)")] = "value-\(generation)-\(index)"
    }
    for index in 0..<(keys - generalCount) {
        let file = ConfigFileID(role: index % 2 == 0 ? .compute : .controller, service: "svc\(index / 200)", file: "svc\(index / 200).conf")
        let key = SettingKey(file: file, section: "section_\(index % 11)", key: "option_\(index)")
        let value = index % 5 == 0 ? "http://$VAR_\(index % generalCount):\(generation)/path" : "setting-\(generation)-\(index)=x"
        tree[.setting(key)] = value
    }
    return tree
}

struct Stats: CustomStringConvertible {
    var samples: [Duration]

    var sorted: [Duration] { samples.sorted() }
    var median: Duration {
        let values = sorted
        let middle = values.count / 2
        return values.count % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2
    }

    var description: String {
        "runs=\(samples.count)  median \(format(median))  min \(format(sorted.first!))  max \(format(sorted.last!))"
    }
}

func seconds(_ duration: Duration) -> Double {
    let (whole, atto) = duration.components
    return Double(whole) + Double(atto) / 1e18
}

func format(_ duration: Duration) -> String {
    String(format: "%.3fs", seconds(duration))
}

func measure(runs: Int, _ body: (Int) async throws -> Void) async throws -> Stats {
    var samples: [Duration] = []
    let clock = ContinuousClock()
    for run in 0..<runs {
        let start = clock.now
        try await body(run)
        samples.append(clock.now - start)
    }
    return Stats(samples: samples)
}

func line(_ label: String, _ stats: Stats) {
    print(label.padding(toLength: 34, withPad: " ", startingAt: 0) + stats.description)
}

func main() async throws {
    let options = try Options(Array(CommandLine.arguments.dropFirst()))
    let directory = NSTemporaryDirectory() + "config-agent-bench-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let (process, endpoint) = try await startEtcd(in: directory)
    do {
        let settings = try EtcdSettings(endpoints: [endpoint], prefix: "/bench", requestTimeout: .seconds(120))
        try await EtcdClient.withClient(settings: settings, logger: silent) { client in
            let store = try ConfigStore(client: client, prefix: "/bench", logger: silent)
            let sample = makeTree(keys: options.keys, generation: 0)
            print("ConfigAgentBench: etcd at \(endpoint), \(sample.counts.total) keys (\(sample.counts))")

            var generation = 0
            let load = try await measure(runs: options.runs) { _ in
                generation += 1
                let report = try await store.load(makeTree(keys: options.keys, generation: generation))
                precondition(report.counts.total == options.keys)
            }
            line("load (one transaction)", load)

            let baseline = try await measure(runs: options.baselineRuns) { _ in
                generation += 1
                let tree = makeTree(keys: options.keys, generation: generation)
                _ = try await client.transaction(operations: [.deleteRange(store.treeRange)])
                for (key, value) in tree.values {
                    _ = try await client.put(key: store.etcdKey(key), value: Array(value.utf8))
                }
            }
            line("baseline (delete + PUT per key)", baseline)
            print(String(format: "ratio baseline/load (medians)     %.1fx", seconds(baseline.median) / seconds(load.median)))

            let snapshot = try await store.read()
            precondition(snapshot.tree.values.count == options.keys, "the baseline left \(snapshot.tree.values.count) keys")
            let files = snapshot.tree.files
            // Each run writes new files into a directory of its own.
            let render = try await measure(runs: options.runs) { run in
                let fresh = try await store.read()
                let renderer = ConfigRenderer(general: fresh.tree.general, environment: [:])
                for file in fresh.tree.files {
                    let target = "\(directory)/render/\(run)/\(file.role.rawValue)"
                    try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
                    try renderer.write(file, from: fresh.tree, into: target)
                }
            }
            line("read + render \(files.count) files", render)
        }
    } catch {
        await stopEtcd(process)
        throw error
    }
    await stopEtcd(process)
}

do {
    try await main()
} catch {
    FileHandle.standardError.write(Data("ConfigAgentBench: \(error)\n".utf8))
    exit(1)
}
