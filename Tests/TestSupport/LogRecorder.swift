import Logging
import Synchronization

/// Lines collected from a logger or an in-process command, safe to append to from any task.
package final class OutputCollector: Sendable {
    private let storage = Mutex<[String]>([])

    package init() {}

    package func append(_ line: String) { storage.withLock { $0.append(line) } }
    package var lines: [String] { storage.withLock { $0 } }
    package var text: String { lines.joined(separator: "\n") }
}

/// A log handler that keeps every message as `LEVEL: MESSAGE [metadata]`, so a test can see what the
/// code under test decided and logged.
package struct RecordingLogHandler: LogHandler {
    package let sink: OutputCollector
    package var logLevel: Logger.Level = .trace
    package var metadata: Logger.Metadata = [:]

    package init(sink: OutputCollector) { self.sink = sink }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        sink.append("\(event.level): \(event.message)" + (merged.isEmpty ? "" : " \(merged)"))
    }
}

/// A logger whose every line goes to `sink`.
package func recordingLogger(_ sink: OutputCollector, label: String = "test") -> Logger {
    Logger(label: label) { _ in RecordingLogHandler(sink: sink) }
}
