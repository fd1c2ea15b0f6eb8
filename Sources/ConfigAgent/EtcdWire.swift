#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// JSON shapes of etcd's v3 gRPC gateway (etcd 3.4: POST /v3/kv/range, /v3/kv/txn,
// /v3/watch, /v3/auth/authenticate). Keys and values travel as base64; 64-bit
// integers come back as strings. Field names are the proto names.

/// An int64 that etcd's gateway writes as a JSON string.
struct WireInt64: Codable, Hashable {
    var value: Int64

    init(_ value: Int64) { self.value = value }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self), let number = Int64(text) {
            value = number
        } else {
            value = try container.decode(Int64.self)
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(String(value))
    }
}

enum WireBase64 {
    static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    static func decode(_ text: String?) -> [UInt8]? {
        guard let text else { return [] }
        return Data(base64Encoded: text).map { Array($0) }
    }
}

struct WireHeader: Decodable {
    var revision: WireInt64?
}

struct WireKeyValue: Decodable {
    var key: String?
    var value: String?
    var mod_revision: WireInt64?
}

struct WireRangeRequest: Encodable {
    var key: String
    var range_end: String?
    var revision: WireInt64?
    var keys_only: Bool?
}

struct WireRangeResponse: Decodable {
    var header: WireHeader?
    var kvs: [WireKeyValue]?
    var more: Bool?
}

struct WireCompare: Encodable {
    var result: String
    var target: String
    var key: String
    var range_end: String?
    var mod_revision: WireInt64?
}

struct WirePutRequest: Encodable {
    var key: String
    var value: String
}

struct WireDeleteRangeRequest: Encodable {
    var key: String
    var range_end: String?
}

struct WireRequestOp: Encodable {
    var request_put: WirePutRequest?
    var request_delete_range: WireDeleteRangeRequest?
    var request_txn: WireTxnRequest?
}

struct WireTxnRequest: Encodable {
    var compare: [WireCompare]?
    var success: [WireRequestOp]?
}

struct WireDeleteRangeResponse: Decodable {
    var deleted: WireInt64?
}

struct WireResponseOp: Decodable {
    var response_delete_range: WireDeleteRangeResponse?
    var response_txn: WireTxnResponse?
}

struct WireTxnResponse: Decodable {
    var header: WireHeader?
    var succeeded: Bool?
    var responses: [WireResponseOp]?
}

struct WireAuthenticateRequest: Encodable {
    var name: String
    var password: String
}

struct WireAuthenticateResponse: Decodable {
    var token: String?
}

/// The body of a non-200 answer: `{"error": …, "message": …, "code": …}`.
struct WireError: Decodable {
    var error: String?
    var message: String?
    var code: Int?

    var text: String { message ?? error ?? "unknown error" }
}

struct WireWatchCreate: Encodable {
    struct Request: Encodable {
        var key: String
        var range_end: String?
        var start_revision: WireInt64?
    }

    var create_request: Request
}

struct WireEvent: Decodable {
    var type: String?
    var kv: WireKeyValue?
}

struct WireWatchResult: Decodable {
    var header: WireHeader?
    var created: Bool?
    var canceled: Bool?
    var compact_revision: WireInt64?
    var cancel_reason: String?
    var events: [WireEvent]?
}

/// An error inside a streamed answer: `{"error": {"grpc_code": …, "message": …}}`.
struct WireStreamError: Decodable {
    var grpc_code: Int?
    var http_code: Int?
    var message: String?
}

struct WireWatchMessage: Decodable {
    var result: WireWatchResult?
    var error: WireStreamError?
}
