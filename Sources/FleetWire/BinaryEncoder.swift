import NIOCore

/// Encodes `Codable` values into Fleet's compact binary format.
///
/// The format is schema-driven: both sides know the type, so no field names travel. Integers are
/// varints (one byte for small values), strings are a length and UTF-8, optionals a presence byte,
/// and arrays of fixed-width numbers (`[Double]`, `[Int32]`, `[UInt8]`, …) are copied as raw
/// little-endian bytes, at memory-copy speed.
///
/// ```swift
/// struct Point: Codable { var x: Double; var y: Double; var label: String? }
/// let bytes = try BinaryEncoder().encode(Point(x: 1, y: 2, label: nil))   // 17 bytes
/// let point = try BinaryDecoder().decode(Point.self, from: bytes)
/// ```
///
/// What the format does not carry:
/// - field names: a decoder must use the same type, with fields in the same order;
/// - the keys of keyed containers, except for enum cases (written as the case name) and
///   `Dictionary` keys;
/// - a marker before non-optional values: code that tests `decodeNil(forKey:)` before a value it
///   wrote with plain `encode` (instead of `encodeIfPresent` or an `Optional`) is not supported;
/// - absent fields: code that skips a key when encoding and asks `contains(_:)` or
///   `decodeIfPresent` for it when decoding is not supported (`URL`, which does this, is written
///   as its absolute string instead).
///
/// Complexity: O(n) in the size of the value; one pass, no intermediate tree.
public struct BinaryEncoder: Sendable {
    /// Contextual information handed to the values' `encode(to:)` as `Encoder.userInfo`.
    public var userInfo: [CodingUserInfoKey: any Sendable] = [:]

    /// An object the values' `encode(to:)` reach with ``context(of:)``: per-encode state handed
    /// down without the dictionary `userInfo` would make for every encode.
    package var context: (any AnyObject & Sendable)?

    /// The ``context`` of the encode `encoder` runs, when it is a binary encoder's.
    package static func context(of encoder: any Encoder) -> (any AnyObject & Sendable)? {
        (encoder as? BinaryEncoderCore)?.context
    }

    /// Creates an encoder.
    public init() {}

    /// Encodes `value` and returns its bytes.
    public func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        try encode(value, into: &buffer)
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    /// Appends the encoding of `value` to `buffer`, after its writable index.
    ///
    /// This is the zero-copy path for frames: encode straight into the buffer you will send.
    /// When encoding throws, `buffer` is left as it was.
    public func encode<T: Encodable>(_ value: T, into buffer: inout ByteBuffer) throws {
        let core = BinaryEncoderCore(userInfo: userInfo, context: context)
        let start = buffer.writerIndex
        swap(&core.buffer, &buffer)
        defer { swap(&core.buffer, &buffer) }
        do {
            try core.encodeValue(value)
        } catch {
            core.buffer.moveWriterIndex(to: start)
            throw error
        }
    }
}

/// The `Encoder` handed to `encode(to:)`; owns the output buffer while encoding.
final class BinaryEncoderCore: Encoder {
    /// The output. Exempt from dynamic exclusivity checks, which the many small writes of an
    /// encode would otherwise pay one each: the core is confined to one encode call on one
    /// thread, and no access to it overlaps another.
    @exclusivity(unchecked) var buffer = ByteBuffer()
    let codingPath: [any CodingKey] = []
    /// Kept as given and converted only when a value asks: most encodes and decodes never do.
    private let sendableUserInfo: [CodingUserInfoKey: any Sendable]
    var userInfo: [CodingUserInfoKey: Any] { sendableUserInfo }
    let context: (any AnyObject & Sendable)?

    init(userInfo: [CodingUserInfoKey: any Sendable], context: (any AnyObject & Sendable)? = nil) {
        self.sendableUserInfo = userInfo
        self.context = context
    }


    // MARK: Encoder

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(KeyedBinaryEncodingContainer<Key>(core: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        UnkeyedBinaryEncodingContainer(core: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueBinaryEncodingContainer(core: self)
    }

    // MARK: Writing

    /// Encodes any value, taking the format's own path for optionals, arrays and dictionaries.
    @inline(__always)
    func encodeValue<T: Encodable>(_ value: T) throws {
        // The commonest leaves first, by a cheap type comparison instead of a conformance lookup.
        if T.self == String.self { return writeString(unsafeBitCast(value, to: String.self)) }
        if T.self == Int.self { return writeSigned(Int64(unsafeBitCast(value, to: Int.self))) }
        if T.self == Double.self { return unsafeBitCast(value, to: Double.self).write(to: self) }
        if let special = value as? any BinaryEncodableSpecial {
            try special.binaryEncode(to: self)
        } else {
            try value.encode(to: self)
        }
    }

    @inline(__always)
    func writeVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        buffer.writeInteger(UInt8(truncatingIfNeeded: value))
    }

    @inline(__always)
    func writeSigned(_ value: Int64) {
        writeVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    func writeString(_ string: String) {
        var string = string
        string.withUTF8 { utf8 in
            writeVarint(UInt64(utf8.count))
            buffer.writeBytes(UnsafeRawBufferPointer(utf8))
        }
    }

    /// Writes the presence byte of an optional, then the value when there is one.
    @inline(__always)
    func writeOptional<T>(_ value: T?, _ write: (T) throws -> Void) rethrows {
        if let value {
            buffer.writeInteger(1 as UInt8)
            try write(value)
        } else {
            buffer.writeInteger(0 as UInt8)
        }
    }

    func writeKey(_ key: some CodingKey) {
        writeString(key.stringValue)
    }
}
