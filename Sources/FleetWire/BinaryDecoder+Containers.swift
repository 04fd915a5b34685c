import NIOCore

struct KeyedBinaryDecodingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let core: BinaryDecoderCore
    var codingPath: [any CodingKey] { [] }

    /// Only enum cases put their key on the wire; for them this is the one case present.
    var allKeys: [Key] { core.peekKey(Key.self).map { [$0] } ?? [] }

    func contains(_ key: Key) -> Bool { true }

    func decodeNil(forKey key: Key) throws -> Bool { core.consumeNilMarker() }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try .read(from: core) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try .read(from: core) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try .read(from: core) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try .read(from: core) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try .read(from: core) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try .read(from: core) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try .read(from: core) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try .read(from: core) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try .read(from: core) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try .read(from: core) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try .read(from: core) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try .read(from: core) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try .read(from: core) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try .read(from: core) }
    @available(macOS 15.0, *)
    func decode(_ type: Int128.Type, forKey key: Key) throws -> Int128 { try .read(from: core) }
    @available(macOS 15.0, *)
    func decode(_ type: UInt128.Type, forKey key: Key) throws -> UInt128 { try .read(from: core) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try core.decodeValue(type) }

    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try present() }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try present() }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try present() }
    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try present() }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try present() }
    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try present() }
    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try present() }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try present() }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try present() }
    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try present() }
    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try present() }
    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try present() }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try present() }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try present() }
    @available(macOS 15.0, *)
    func decodeIfPresent(_ type: Int128.Type, forKey key: Key) throws -> Int128? { try present() }
    @available(macOS 15.0, *)
    func decodeIfPresent(_ type: UInt128.Type, forKey key: Key) throws -> UInt128? { try present() }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        try core.readPresence() ? try core.decodeValue(type) : nil
    }

    private func present<T: BinaryPrimitive>() throws -> T? {
        try core.readPresence() ? try T.read(from: core) : nil
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try core.readKey(expecting: key)
        return try core.container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try core.readKey(expecting: key)
        return try core.unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { core }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        try core.readKey(expecting: key)
        return core
    }
}

struct UnkeyedBinaryDecodingContainer: UnkeyedDecodingContainer {
    let core: BinaryDecoderCore
    let count: Int?
    private(set) var currentIndex = 0
    var codingPath: [any CodingKey] { [] }
    var isAtEnd: Bool { currentIndex >= count! }

    init(core: BinaryDecoderCore) throws {
        self.core = core
        self.count = try core.checkCount(UInt64(core.readFixed(UInt32.self)))
    }

    private mutating func next() throws {
        guard currentIndex < count! else {
            throw core.corrupted("unkeyed container has only \(count!) elements")
        }
        currentIndex += 1
    }

    mutating func decodeNil() throws -> Bool {
        guard currentIndex < count!, core.consumeNilMarker() else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(); return try .read(from: core) }
    mutating func decode(_ type: String.Type) throws -> String { try next(); return try .read(from: core) }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(); return try .read(from: core) }
    mutating func decode(_ type: Float.Type) throws -> Float { try next(); return try .read(from: core) }
    mutating func decode(_ type: Int.Type) throws -> Int { try next(); return try .read(from: core) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next(); return try .read(from: core) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next(); return try .read(from: core) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next(); return try .read(from: core) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next(); return try .read(from: core) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next(); return try .read(from: core) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next(); return try .read(from: core) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next(); return try .read(from: core) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next(); return try .read(from: core) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next(); return try .read(from: core) }
    @available(macOS 15.0, *)
    mutating func decode(_ type: Int128.Type) throws -> Int128 { try next(); return try .read(from: core) }
    @available(macOS 15.0, *)
    mutating func decode(_ type: UInt128.Type) throws -> UInt128 { try next(); return try .read(from: core) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try next()
        return try core.decodeValue(type)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try next()
        return try core.container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next()
        return try core.unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        try next()
        return core
    }
}

struct SingleValueBinaryDecodingContainer: SingleValueDecodingContainer {
    let core: BinaryDecoderCore
    var codingPath: [any CodingKey] { [] }

    func decodeNil() -> Bool { core.consumeNilMarker() }

    func decode(_ type: Bool.Type) throws -> Bool { try .read(from: core) }
    func decode(_ type: String.Type) throws -> String { try .read(from: core) }
    func decode(_ type: Double.Type) throws -> Double { try .read(from: core) }
    func decode(_ type: Float.Type) throws -> Float { try .read(from: core) }
    func decode(_ type: Int.Type) throws -> Int { try .read(from: core) }
    func decode(_ type: Int8.Type) throws -> Int8 { try .read(from: core) }
    func decode(_ type: Int16.Type) throws -> Int16 { try .read(from: core) }
    func decode(_ type: Int32.Type) throws -> Int32 { try .read(from: core) }
    func decode(_ type: Int64.Type) throws -> Int64 { try .read(from: core) }
    func decode(_ type: UInt.Type) throws -> UInt { try .read(from: core) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try .read(from: core) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try .read(from: core) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try .read(from: core) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try .read(from: core) }
    @available(macOS 15.0, *)
    func decode(_ type: Int128.Type) throws -> Int128 { try .read(from: core) }
    @available(macOS 15.0, *)
    func decode(_ type: UInt128.Type) throws -> UInt128 { try .read(from: core) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try core.decodeValue(type) }
}
