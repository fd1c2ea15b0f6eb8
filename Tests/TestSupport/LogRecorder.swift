import Logging
import Synchronization

/// Lines collected from a logger or an in-process command, safe to append to from any task.
public final class OutputCollector: Sendable {
    private let storage = Mutex<[String]>([])

    public init() {}

    public func append(_ line: String) { storage.withLock { $0.append(line) } }
    public var lines: [String] { storage.withLock { $0 } }
    public var text: String { lines.joined(separator: "\n") }
}

/// A log handler that keeps every message as `LEVEL: MESSAGE [metadata]`, so a test can see what the
/// code under test decided and logged.
public struct RecordingLogHandler: LogHandler {
    public let sink: OutputCollector
    public var logLevel: Logger.Level = .trace
    public var metadata: Logger.Metadata = [:]

    public init(sink: OutputCollector) { self.sink = sink }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        sink.append("\(event.level): \(event.message)" + (merged.isEmpty ? "" : " \(merged)"))
    }
}

/// A logger whose every line goes to `sink`.
public func recordingLogger(_ sink: OutputCollector, label: String = "test") -> Logger {
    Logger(label: label) { _ in RecordingLogHandler(sink: sink) }
}
