/// The Codable form every value here has: its text (`10.0.0.2`, `fd00::1/64`, `52:54:00:12:34:56`).
extension Decoder {
    /// The value written as text, parsed by `parse`; text it refuses is a decoding error naming what was
    /// expected (`kind`, e.g. "an IPv4 address").
    func decodeText<Value>(_ kind: String, _ parse: (String) -> Value?) throws -> Value {
        let text = try singleValueContainer().decode(String.self)
        guard let value = parse(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "not \(kind): \(text)"))
        }
        return value
    }
}

extension Encoder {
    /// Writes `text` as the single value.
    func encodeText(_ text: String) throws {
        var container = singleValueContainer()
        try container.encode(text)
    }
}
