import NIOCore

struct KeyedBinaryEncodingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let core: BinaryEncoderCore
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil(forKey key: Key) throws { core.buffer.writeInteger(0 as UInt8) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { value.write(to: core) }
    mutating func encode(_ value: String, forKey key: Key) throws { value.write(to: core) }
    mutating func encode(_ value: Double, forKey key: Key) throws { value.write(to: core) }
    mutating func encode(_ value: Float, forKey key: Key) throws { value.write(to: core) }
    mutating func encode(_ value: Int, forKey key: Key) throws { value.write(to: core) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { value.write(to: core) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { value.write(to: core) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { value.write(to: core) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { value.write(to: core) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { value.write(to: core) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { value.write(to: core) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { value.write(to: core) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { value.write(to: core) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { value.write(to: core) }
    @available(macOS 15.0, *)
    mutating func encode(_ value: Int128, forKey key: Key) throws { value.write(to: core) }
    @available(macOS 15.0, *)
    mutating func encode(_ value: UInt128, forKey key: Key) throws { value.write(to: core) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try core.encodeValue(value) }

    mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { present(value) }
    mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { present(value) }
    mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { present(value) }
    mutating func encodeIfPresent(_ value: Float?, forKey key: Key) throws { present(value) }
    mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { present(value) }
    mutating func encodeIfPresent(_ value: Int8?, forKey key: Key) throws { present(value) }
    mutating func encodeIfPresent(_ value: Int16?, forKey key: Key) throws { present(value) }
    mutating func encodeIfPresent(_ value: Int32?, forKey key: Key) throws { present(value) }
    mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { present(value) }
    mutating func encodeIfPresent(_ value: UInt?, forKey key: Key) throws { present(value) }
    mutating func encodeIfPresent(_ value: UInt8?, forKey key: Key) throws { present(value) }
    mutating func encodeIfPresent(_ value: UInt16?, forKey key: Key) throws { present(value) }
    mutating func encodeIfPresent(_ value: UInt32?, forKey key: Key) throws { present(value) }
    mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) throws { present(value) }
    @available(macOS 15.0, *)
    mutating func encodeIfPresent(_ value: Int128?, forKey key: Key) throws { present(value) }
    @available(macOS 15.0, *)
    mutating func encodeIfPresent(_ value: UInt128?, forKey key: Key) throws { present(value) }
    mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
        try core.writeOptional(value) { try core.encodeValue($0) }
    }

    private func present<T: BinaryPrimitive>(_ value: T?) {
        core.writeOptional(value) { $0.write(to: core) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        core.writeKey(key)
        return core.container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        core.writeKey(key)
        return core.unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { core }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        core.writeKey(key)
        return core
    }
}

/// An unkeyed container: a 4-byte little-endian element count, patched as elements arrive, then
/// the elements. (`Array` takes a faster path with a varint count; this one serves custom
/// `encode(to:)` code and types such as `Set`.)
struct UnkeyedBinaryEncodingContainer: UnkeyedEncodingContainer {
    let core: BinaryEncoderCore
    private let countIndex: Int
    private(set) var count = 0
    var codingPath: [any CodingKey] { [] }

    init(core: BinaryEncoderCore) {
        self.core = core
        self.countIndex = core.buffer.writerIndex
        core.buffer.writeInteger(0 as UInt32, endianness: .little)
    }

    private mutating func added() {
        count += 1
        core.buffer.setInteger(UInt32(truncatingIfNeeded: count), at: countIndex, endianness: .little)
    }

    mutating func encodeNil() throws { core.buffer.writeInteger(0 as UInt8); added() }
    mutating func encode(_ value: Bool) throws { value.write(to: core); added() }
    mutating func encode(_ value: String) throws { value.write(to: core); added() }
    mutating func encode(_ value: Double) throws { value.write(to: core); added() }
    mutating func encode(_ value: Float) throws { value.write(to: core); added() }
    mutating func encode(_ value: Int) throws { value.write(to: core); added() }
    mutating func encode(_ value: Int8) throws { value.write(to: core); added() }
    mutating func encode(_ value: Int16) throws { value.write(to: core); added() }
    mutating func encode(_ value: Int32) throws { value.write(to: core); added() }
    mutating func encode(_ value: Int64) throws { value.write(to: core); added() }
    mutating func encode(_ value: UInt) throws { value.write(to: core); added() }
    mutating func encode(_ value: UInt8) throws { value.write(to: core); added() }
    mutating func encode(_ value: UInt16) throws { value.write(to: core); added() }
    mutating func encode(_ value: UInt32) throws { value.write(to: core); added() }
    mutating func encode(_ value: UInt64) throws { value.write(to: core); added() }
    @available(macOS 15.0, *)
    mutating func encode(_ value: Int128) throws { value.write(to: core); added() }
    @available(macOS 15.0, *)
    mutating func encode(_ value: UInt128) throws { value.write(to: core); added() }
    mutating func encode<T: Encodable>(_ value: T) throws { try core.encodeValue(value); added() }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type
    ) -> KeyedEncodingContainer<NestedKey> {
        added()
        return core.container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        added()
        return core.unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        added()
        return core
    }
}

struct SingleValueBinaryEncodingContainer: SingleValueEncodingContainer {
    let core: BinaryEncoderCore
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil() throws { core.buffer.writeInteger(0 as UInt8) }
    mutating func encode(_ value: Bool) throws { value.write(to: core) }
    mutating func encode(_ value: String) throws { value.write(to: core) }
    mutating func encode(_ value: Double) throws { value.write(to: core) }
    mutating func encode(_ value: Float) throws { value.write(to: core) }
    mutating func encode(_ value: Int) throws { value.write(to: core) }
    mutating func encode(_ value: Int8) throws { value.write(to: core) }
    mutating func encode(_ value: Int16) throws { value.write(to: core) }
    mutating func encode(_ value: Int32) throws { value.write(to: core) }
    mutating func encode(_ value: Int64) throws { value.write(to: core) }
    mutating func encode(_ value: UInt) throws { value.write(to: core) }
    mutating func encode(_ value: UInt8) throws { value.write(to: core) }
    mutating func encode(_ value: UInt16) throws { value.write(to: core) }
    mutating func encode(_ value: UInt32) throws { value.write(to: core) }
    mutating func encode(_ value: UInt64) throws { value.write(to: core) }
    @available(macOS 15.0, *)
    mutating func encode(_ value: Int128) throws { value.write(to: core) }
    @available(macOS 15.0, *)
    mutating func encode(_ value: UInt128) throws { value.write(to: core) }
    mutating func encode<T: Encodable>(_ value: T) throws { try core.encodeValue(value) }
}
