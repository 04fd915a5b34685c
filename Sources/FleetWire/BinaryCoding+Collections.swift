#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Types the binary coder writes its own way instead of through their `Codable` conformance:
/// optionals (a presence byte), arrays (a varint count; raw bytes for fixed-width numbers),
/// dictionaries (a count and the key–value pairs, since keyed containers carry no keys), `Data`
/// and `URL`.
protocol BinaryEncodableSpecial {
    func binaryEncode(to encoder: BinaryEncoderCore) throws
}

/// The decoding side of ``BinaryEncodableSpecial``.
protocol BinaryDecodableSpecial {
    static func binaryDecode(from decoder: BinaryDecoderCore) throws -> Self
}

extension Optional: BinaryEncodableSpecial where Wrapped: Encodable {
    func binaryEncode(to encoder: BinaryEncoderCore) throws {
        try encoder.writeOptional(self) { try encoder.encodeValue($0) }
    }
}

extension Optional: BinaryDecodableSpecial where Wrapped: Decodable {
    static func binaryDecode(from decoder: BinaryDecoderCore) throws -> Wrapped? {
        try decoder.readPresence() ? try decoder.decodeValue(Wrapped.self) : nil
    }
}

extension Array: BinaryEncodableSpecial where Element: Encodable {
    func binaryEncode(to encoder: BinaryEncoderCore) throws {
        encoder.writeVarint(UInt64(count))
        #if _endian(little)
        if Element.self is any RawNumeric.Type {
            _ = withUnsafeBytes { encoder.buffer.writeBytes($0) }
            return
        }
        #endif
        for element in self { try encoder.encodeValue(element) }
    }
}

extension Array: BinaryDecodableSpecial where Element: Decodable {
    static func binaryDecode(from decoder: BinaryDecoderCore) throws -> [Element] {
        #if _endian(little)
        if Element.self is any RawNumeric.Type {
            let count = try decoder.readCount(minimumElementSize: MemoryLayout<Element>.stride)
            let bytes = try decoder.readBytes(count * MemoryLayout<Element>.stride)
            return [Element](unsafeUninitializedCapacity: count) { storage, initialized in
                UnsafeMutableRawBufferPointer(storage).copyMemory(from: bytes)
                initialized = count
            }
        }
        #endif
        let count = try decoder.readCount()
        var result = [Element]()
        result.reserveCapacity(Swift.min(count, decoder.remaining))
        for _ in 0..<count { result.append(try decoder.decodeValue(Element.self)) }
        return result
    }
}

extension Dictionary: BinaryEncodableSpecial where Key: Encodable, Value: Encodable {
    func binaryEncode(to encoder: BinaryEncoderCore) throws {
        encoder.writeVarint(UInt64(count))
        for (key, value) in self {
            try encoder.encodeValue(key)
            try encoder.encodeValue(value)
        }
    }
}

extension Dictionary: BinaryDecodableSpecial where Key: Decodable, Value: Decodable {
    static func binaryDecode(from decoder: BinaryDecoderCore) throws -> [Key: Value] {
        let count = try decoder.readCount()
        var result = [Key: Value](minimumCapacity: Swift.min(count, decoder.remaining))
        for _ in 0..<count {
            let key = try decoder.decodeValue(Key.self)
            let value = try decoder.decodeValue(Value.self)
            guard result.updateValue(value, forKey: key) == nil else {
                throw decoder.corrupted("duplicate dictionary key \(key)")
            }
        }
        return result
    }
}

extension Data: BinaryEncodableSpecial {
    func binaryEncode(to encoder: BinaryEncoderCore) throws {
        encoder.writeVarint(UInt64(count))
        _ = withUnsafeBytes { encoder.buffer.writeBytes($0) }
    }
}

extension Data: BinaryDecodableSpecial {
    static func binaryDecode(from decoder: BinaryDecoderCore) throws -> Data {
        Data(try decoder.readBytes(decoder.readLength()))
    }
}

/// `URL`'s own `Codable` conformance leaves out its base when there is none, which a format without
/// keys cannot tell; it travels as its absolute string instead.
extension URL: BinaryEncodableSpecial {
    func binaryEncode(to encoder: BinaryEncoderCore) throws {
        encoder.writeString(absoluteString)
    }
}

extension URL: BinaryDecodableSpecial {
    static func binaryDecode(from decoder: BinaryDecoderCore) throws -> URL {
        let text = try decoder.readString()
        guard let url = URL(string: text) else { throw decoder.corrupted("invalid URL \"\(text)\"") }
        return url
    }
}
