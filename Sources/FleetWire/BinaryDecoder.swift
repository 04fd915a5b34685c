import NIOCore

/// Decodes values written by ``BinaryEncoder``.
///
/// Decoding is safe on hostile bytes: every length and count is checked against the bytes that
/// remain before anything is allocated, strings must be valid UTF-8, integers must fit their type,
/// nesting is bounded by ``maximumDepth``, and trailing bytes are an error. Every failure is a
/// `DecodingError.dataCorrupted` whose description says what was wrong and at which byte.
///
/// ```swift
/// let samples = try BinaryDecoder().decode([Double].self, from: bytes)
/// ```
///
/// Complexity: O(n) in the size of the input.
public struct BinaryDecoder: Sendable {
    /// Contextual information handed to the values' `init(from:)` as `Decoder.userInfo`.
    public var userInfo: [CodingUserInfoKey: any Sendable] = [:]

    /// The deepest nesting of values the decoder follows before it gives up (default 200).
    ///
    /// Recursive types (trees, indirect enums) decoded from untrusted bytes could otherwise
    /// exhaust the stack.
    public var maximumDepth: Int = 200

    /// Creates a decoder.
    public init() {}

    /// Decodes a value of `type` from all of `bytes`.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try bytes.withUnsafeBytes { try decode(type, from: $0) }
    }

    /// Decodes a value of `type` from the readable bytes of `buffer`.
    public func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws -> T {
        try buffer.withUnsafeReadableBytes { try decode(type, from: $0) }
    }

    /// Decodes a value of `type` from all of `bytes`.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
        let core = BinaryDecoderCore(bytes: bytes, userInfo: userInfo, maximumDepth: maximumDepth)
        // The bytes are borrowed for this call only: a decoder that a value kept reads nothing.
        defer { core.finish() }
        let value = try core.decodeValue(type)
        if core.remaining != 0 {
            throw core.corrupted("\(core.remaining) unexpected bytes after the value")
        }
        return value
    }
}

/// The `Decoder` handed to `init(from:)`; reads from borrowed bytes that outlive it.
final class BinaryDecoderCore: Decoder {
    private let base: UnsafeRawPointer?
    private let end: Int
    private let maximumDepth: Int
    /// Read position, nesting depth and the empty-element budget. Exempt from dynamic
    /// exclusivity checks, which each of the many small reads would otherwise pay: the core is
    /// confined to one decode call on one thread, and no access to it overlaps another.
    @exclusivity(unchecked) private var state: (offset: Int, depth: Int, emptyElementBudget: Int) = (0, 0, 1 << 16)
    let codingPath: [any CodingKey] = []
    /// Kept as given and converted only when a value asks: most encodes and decodes never do.
    private let sendableUserInfo: [CodingUserInfoKey: any Sendable]
    var userInfo: [CodingUserInfoKey: Any] { sendableUserInfo }

    init(bytes: UnsafeRawBufferPointer, userInfo: [CodingUserInfoKey: any Sendable], maximumDepth: Int) {
        self.base = bytes.baseAddress
        self.end = bytes.count
        self.sendableUserInfo = userInfo
        self.maximumDepth = maximumDepth
    }

    private(set) var offset: Int {
        get { state.offset }
        set { state.offset = newValue }
    }

    private var depth: Int {
        get { state.depth }
        set { state.depth = newValue }
    }

    var remaining: Int { end - offset }

    /// Ends reading: every later read finds the end of the input.
    func finish() { offset = end }

    // MARK: Decoder

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(KeyedBinaryDecodingContainer<Key>(core: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try UnkeyedBinaryDecodingContainer(core: self)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleValueBinaryDecodingContainer(core: self)
    }

    // MARK: Reading

    /// Decodes any value, taking the format's own path for optionals, arrays and dictionaries.
    @inline(__always)
    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        depth += 1
        defer { depth -= 1 }
        guard depth <= maximumDepth else {
            throw corrupted("values nested deeper than \(maximumDepth) levels")
        }
        // The commonest leaves first, by a cheap type comparison instead of a conformance lookup.
        if T.self == String.self { return unsafeBitCast(try readString(), to: T.self) }
        if T.self == Int.self { return unsafeBitCast(try Int.read(from: self), to: T.self) }
        if T.self == Double.self { return unsafeBitCast(try Double.read(from: self), to: T.self) }
        if let special = type as? any BinaryDecodableSpecial.Type {
            return try decodeSpecial(special, as: type)
        }
        return try T(from: self)
    }

    /// Decodes a value of a type the format writes its own way; `S` is `T`, opened.
    private func decodeSpecial<S: BinaryDecodableSpecial, T>(_ special: S.Type, as type: T.Type) throws -> T {
        unsafeBitCast(try S.binaryDecode(from: self), to: T.self)
    }

    func corrupted(_ what: String, back: Int = 0) -> DecodingError {
        DecodingError.dataCorrupted(
            DecodingError.Context(codingPath: [], debugDescription: "at byte \(offset - back): \(what)")
        )
    }

    @inline(__always)
    func readByte() throws -> UInt8 {
        guard offset < end, let base else { throw corrupted("expected 1 more byte, found the end") }
        let byte = base.load(fromByteOffset: offset, as: UInt8.self)
        offset += 1
        return byte
    }

    @inline(__always)
    func peekByte() -> UInt8? {
        guard offset < end, let base else { return nil }
        return base.load(fromByteOffset: offset, as: UInt8.self)
    }

    @inline(__always)
    func readFixed<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard size <= remaining, let base else {
            throw corrupted("expected \(size) bytes for \(T.self), found \(remaining)")
        }
        let value = base.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += size
        return T(littleEndian: value)
    }

    /// Reads a LEB128 varint of at most 10 bytes; longer or overflowing encodings are rejected.
    @inline(__always)
    func readVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readByte()
            if shift == 63 && byte > 1 { throw corrupted("varint overflows 64 bits", back: 1) }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    @inline(__always)
    func readSigned() throws -> Int64 {
        let raw = try readVarint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// Reads `count` bytes, which stay valid for as long as the input does.
    func readBytes(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count <= remaining else {
            throw corrupted("length \(count) is past the end: \(remaining) bytes remain")
        }
        let bytes = UnsafeRawBufferPointer(start: base.map { $0 + offset }, count: count)
        offset += count
        return bytes
    }

    func readString() throws -> String {
        let length = try readLength()
        let bytes = try readBytes(length)
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw corrupted("string of \(length) bytes is not valid UTF-8", back: length)
        }
        return string
    }

    /// Reads a byte length and checks it against what remains.
    func readLength() throws -> Int {
        let length = try readVarint()
        guard length <= UInt64(remaining) else {
            throw corrupted("length \(length) is past the end: \(remaining) bytes remain")
        }
        return Int(length)
    }

    /// Reads an element count, bounded by what remains so that a hostile count cannot make the
    /// decoder allocate or loop far beyond the input. A short collection of empty values (which
    /// take no bytes) is still allowed.
    func readCount(minimumElementSize: Int = 1) throws -> Int {
        let count = try readVarint()
        return try checkCount(count, minimumElementSize: minimumElementSize)
    }

    func checkCount(_ count: UInt64, minimumElementSize: Int = 1) throws -> Int {
        let (needed, overflow) = count.multipliedReportingOverflow(by: UInt64(max(minimumElementSize, 1)))
        guard !overflow else { throw corrupted("count \(count) is past the end: \(remaining) bytes remain") }
        if needed > UInt64(remaining) {
            // More elements than bytes: only possible for values that take no bytes, and only a
            // few of those per decode in all, so nesting cannot multiply them.
            guard count <= UInt64(emptyElementBudget) else {
                throw corrupted("count \(count) is past the end: \(remaining) bytes remain")
            }
            emptyElementBudget -= Int(count)
        }
        return Int(count)
    }

    /// How many more elements, in all collections of this decode together, may exceed the bytes
    /// that remain (collections of empty values, such as `[EmptyStruct]`).
    private var emptyElementBudget: Int {
        get { state.emptyElementBudget }
        set { state.emptyElementBudget = newValue }
    }

    /// Reads a presence byte: `true` when a value follows.
    @inline(__always)
    func readPresence() throws -> Bool {
        switch try readByte() {
        case 0: return false
        case 1: return true
        case let other: throw corrupted("presence byte must be 0 or 1, found \(other)", back: 1)
        }
    }

    /// Consumes the 0 byte that `encodeNil()` writes, if it is next.
    ///
    /// Only `Optional` values carry a presence byte of their own; hand-written code that pairs
    /// `encodeNil()` with a plain `encode(_:)` is decoded by this best guess (see ``BinaryEncoder``).
    func consumeNilMarker() -> Bool {
        guard peekByte() == 0 else { return false }
        offset += 1
        return true
    }

    func readKey<Key: CodingKey>(expecting key: Key) throws {
        let name = try readString()
        guard name == key.stringValue else {
            throw corrupted("expected key \"\(key.stringValue)\", found \"\(name)\"")
        }
    }

    /// The key written at the current position (for enum cases), without consuming it.
    func peekKey<Key: CodingKey>(_ type: Key.Type) -> Key? {
        let saved = offset
        defer { offset = saved }
        guard let name = try? readString() else { return nil }
        return Key(stringValue: name)
    }
}
