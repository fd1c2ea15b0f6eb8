import CYAML

/// One YAML stream as libyaml's parser reports it: the events between the stream's start and end.
///
/// The form `UserData` checks a `#cloud-config` in and writes it back from: replaying the events
/// through libyaml's emitter keeps every value, tag, anchor and scalar style (comments are not
/// events, so they are lost, as with any YAML round trip).
struct YAMLEvents {
    /// One parse event; strings are copied out of libyaml's buffers.
    enum Event: Equatable {
        case documentStart
        case documentEnd
        case alias(anchor: String)
        case scalar(anchor: String?, tag: String?, value: String, plainImplicit: Bool, quotedImplicit: Bool, style: yaml_scalar_style_t)
        case sequenceStart(anchor: String?, tag: String?, implicit: Bool, style: yaml_sequence_style_t)
        case sequenceEnd
        case mappingStart(anchor: String?, tag: String?, implicit: Bool, style: yaml_mapping_style_t)
        case mappingEnd
    }

    /// Why text is not YAML: libyaml's problem (never the text itself) and the 1-based line it found it on.
    struct ParseError: Error {
        var problem: String
        var line: Int?
    }

    var events: [Event]

    /// Parses `text`: every event of the stream, in order; an alias must name an anchor seen before.
    static func parse(_ text: String) throws(ParseError) -> YAMLEvents {
        var bytes = Array(text.utf8)
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { throw ParseError(problem: "libyaml could not start", line: nil) }
        defer { yaml_parser_delete(&parser) }
        var events: [Event] = []
        var anchors: Set<String> = []
        let result: Result<Void, ParseError> = bytes.withUnsafeMutableBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? "unknown problem"
                    return .failure(ParseError(problem: problem, line: Int(parser.problem_mark.line) + 1))
                }
                defer { yaml_event_delete(&event) }
                let mark = Int(event.start_mark.line) + 1
                switch event.type {
                case YAML_STREAM_START_EVENT:
                    continue
                case YAML_STREAM_END_EVENT:
                    return .success(())
                case YAML_DOCUMENT_START_EVENT:
                    events.append(.documentStart)
                case YAML_DOCUMENT_END_EVENT:
                    events.append(.documentEnd)
                case YAML_ALIAS_EVENT:
                    let anchor = string(event.data.alias.anchor) ?? ""
                    guard anchors.contains(anchor) else {
                        return .failure(ParseError(problem: "an alias names an anchor not defined before it", line: mark))
                    }
                    events.append(.alias(anchor: anchor))
                case YAML_SCALAR_EVENT:
                    let scalar = event.data.scalar
                    let anchor = string(scalar.anchor)
                    if let anchor { anchors.insert(anchor) }
                    let value = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
                    events.append(.scalar(anchor: anchor, tag: string(scalar.tag), value: value,
                                          plainImplicit: scalar.plain_implicit != 0, quotedImplicit: scalar.quoted_implicit != 0,
                                          style: scalar.style))
                case YAML_SEQUENCE_START_EVENT:
                    let start = event.data.sequence_start
                    let anchor = string(start.anchor)
                    if let anchor { anchors.insert(anchor) }
                    events.append(.sequenceStart(anchor: anchor, tag: string(start.tag), implicit: start.implicit != 0, style: start.style))
                case YAML_SEQUENCE_END_EVENT:
                    events.append(.sequenceEnd)
                case YAML_MAPPING_START_EVENT:
                    let start = event.data.mapping_start
                    let anchor = string(start.anchor)
                    if let anchor { anchors.insert(anchor) }
                    events.append(.mappingStart(anchor: anchor, tag: string(start.tag), implicit: start.implicit != 0, style: start.style))
                case YAML_MAPPING_END_EVENT:
                    events.append(.mappingEnd)
                default:
                    continue
                }
            }
        }
        try result.get()
        return YAMLEvents(events: events)
    }

    /// The stream written back by libyaml's emitter (block style where the events allow, 2-space
    /// indent, non-ASCII escaped), with implicit document markers (no `---`).
    func emit() throws(ParseError) -> String {
        var emitter = yaml_emitter_t()
        guard yaml_emitter_initialize(&emitter) == 1 else { throw ParseError(problem: "libyaml could not start", line: nil) }
        defer { yaml_emitter_delete(&emitter) }
        let output = EmitterOutput()
        let context = Unmanaged.passUnretained(output).toOpaque()
        yaml_emitter_set_output(&emitter, { context, bytes, count in
            let output = Unmanaged<EmitterOutput>.fromOpaque(context!).takeUnretainedValue()
            output.bytes.append(contentsOf: UnsafeBufferPointer(start: bytes, count: count))
            return 1
        }, context)
        func send(_ initialize: (UnsafeMutablePointer<yaml_event_t>) -> Int32) throws(ParseError) {
            var event = yaml_event_t()
            guard initialize(&event) == 1, yaml_emitter_emit(&emitter, &event) == 1 else {
                let problem = emitter.problem.map { String(cString: $0) } ?? "the events do not form a YAML stream"
                throw ParseError(problem: problem, line: nil)
            }
        }
        try send { yaml_stream_start_event_initialize($0, YAML_UTF8_ENCODING) }
        for event in events {
            switch event {
            case .documentStart:
                try send { yaml_document_start_event_initialize($0, nil, nil, nil, 1) }
            case .documentEnd:
                try send { yaml_document_end_event_initialize($0, 1) }
            case .alias(let anchor):
                try send { pointer in withOptionalCString(anchor) { yaml_alias_event_initialize(pointer, $0) } }
            case .scalar(let anchor, let tag, let value, let plainImplicit, let quotedImplicit, let style):
                var bytes = Array(value.utf8)
                try send { pointer in
                    withOptionalCString(anchor) { anchor in
                        withOptionalCString(tag) { tag in
                            bytes.withUnsafeMutableBufferPointer { value in
                                yaml_scalar_event_initialize(pointer, anchor, tag, value.baseAddress, Int32(value.count),
                                                             plainImplicit ? 1 : 0, quotedImplicit ? 1 : 0, style)
                            }
                        }
                    }
                }
            case .sequenceStart(let anchor, let tag, let implicit, let style):
                try send { pointer in
                    withOptionalCString(anchor) { anchor in
                        withOptionalCString(tag) { tag in yaml_sequence_start_event_initialize(pointer, anchor, tag, implicit ? 1 : 0, style) }
                    }
                }
            case .sequenceEnd:
                try send { yaml_sequence_end_event_initialize($0) }
            case .mappingStart(let anchor, let tag, let implicit, let style):
                try send { pointer in
                    withOptionalCString(anchor) { anchor in
                        withOptionalCString(tag) { tag in yaml_mapping_start_event_initialize(pointer, anchor, tag, implicit ? 1 : 0, style) }
                    }
                }
            case .mappingEnd:
                try send { yaml_mapping_end_event_initialize($0) }
            }
        }
        try send { yaml_stream_end_event_initialize($0) }
        guard yaml_emitter_flush(&emitter) == 1 else { throw ParseError(problem: "libyaml could not write the stream", line: nil) }
        return String(decoding: output.bytes, as: UTF8.self)
    }

    /// The index just past the node that starts at `index` (a scalar, an alias, or a whole collection).
    func endOfNode(at index: Int) -> Int {
        var depth = 0
        var position = index
        repeat {
            switch events[position] {
            case .sequenceStart, .mappingStart: depth += 1
            case .sequenceEnd, .mappingEnd: depth -= 1
            default: break
            }
            position += 1
        } while depth > 0 && position < events.count
        return position
    }
}

/// Where the emitter's write handler collects the bytes.
private final class EmitterOutput {
    var bytes: [UInt8] = []
}

private func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
    pointer.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
}

private func withOptionalCString<Result>(_ text: String?, _ body: (UnsafeMutablePointer<yaml_char_t>?) -> Result) -> Result {
    guard let text else { return body(nil) }
    var bytes = Array(text.utf8) + [0]
    return bytes.withUnsafeMutableBufferPointer { body($0.baseAddress) }
}
