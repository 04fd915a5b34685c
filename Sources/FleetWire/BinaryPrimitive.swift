import NIOCore

/// A value the binary coder writes directly, without going through `Codable` containers.
///
/// Integers of 16 to 64 bits are varints (signed ones zig-zag encoded), so small values take one
/// byte; 8-bit integers are one byte; `Int128`/`UInt128` are 16 bytes, little-endian; `Float` and
/// `Double` are their IEEE-754 bits, little-endian; `Bool` is one byte that must be 0 or 1;
/// `String` is a varint byte count followed by UTF-8. (Arrays of fixed-width numbers are raw
/// little-endian elements instead, `Int`/`UInt` as 8 bytes.)
protocol BinaryPrimitive {
    func write(to encoder: BinaryEncoderCore)
    static func read(from decoder: BinaryDecoderCore) throws -> Self
}

extension Bool: BinaryPrimitive {
    func write(to encoder: BinaryEncoderCore) { encoder.buffer.writeInteger(self ? 1 as UInt8 : 0) }
    static func read(from decoder: BinaryDecoderCore) throws -> Bool {
        switch try decoder.readByte() {
        case 0: return false
        case 1: return true
        case let other: throw decoder.corrupted("a Bool must be 0 or 1, found \(other)", back: 1)
        }
    }
}

extension String: BinaryPrimitive {
    func write(to encoder: BinaryEncoderCore) { encoder.writeString(self) }
    static func read(from decoder: BinaryDecoderCore) throws -> String { try decoder.readString() }
}

extension Double: BinaryPrimitive {
    func write(to encoder: BinaryEncoderCore) { encoder.buffer.writeInteger(bitPattern, endianness: .little) }
    static func read(from decoder: BinaryDecoderCore) throws -> Double {
        Double(bitPattern: try decoder.readFixed(UInt64.self))
    }
}

extension Float: BinaryPrimitive {
    func write(to encoder: BinaryEncoderCore) { encoder.buffer.writeInteger(bitPattern, endianness: .little) }
    static func read(from decoder: BinaryDecoderCore) throws -> Float {
        Float(bitPattern: try decoder.readFixed(UInt32.self))
    }
}

extension Int8: BinaryPrimitive {
    func write(to encoder: BinaryEncoderCore) { encoder.buffer.writeInteger(self) }
    static func read(from decoder: BinaryDecoderCore) throws -> Int8 { Int8(bitPattern: try decoder.readByte()) }
}

extension UInt8: BinaryPrimitive {
    func write(to encoder: BinaryEncoderCore) { encoder.buffer.writeInteger(self) }
    static func read(from decoder: BinaryDecoderCore) throws -> UInt8 { try decoder.readByte() }
}

/// Signed integers wider than a byte: zig-zag varints.
protocol SignedVarint: BinaryPrimitive, FixedWidthInteger, SignedInteger {}
extension SignedVarint {
    func write(to encoder: BinaryEncoderCore) { encoder.writeSigned(Int64(self)) }
    static func read(from decoder: BinaryDecoderCore) throws -> Self {
        let value = try decoder.readSigned()
        guard let narrowed = Self(exactly: value) else {
            throw decoder.corrupted("\(value) does not fit in \(Self.self)")
        }
        return narrowed
    }
}
extension Int: SignedVarint {}
extension Int16: SignedVarint {}
extension Int32: SignedVarint {}
extension Int64: SignedVarint {}

/// Unsigned integers wider than a byte: LEB128 varints.
protocol UnsignedVarint: BinaryPrimitive, FixedWidthInteger, UnsignedInteger {}
extension UnsignedVarint {
    func write(to encoder: BinaryEncoderCore) { encoder.writeVarint(UInt64(self)) }
    static func read(from decoder: BinaryDecoderCore) throws -> Self {
        let value = try decoder.readVarint()
        guard let narrowed = Self(exactly: value) else {
            throw decoder.corrupted("\(value) does not fit in \(Self.self)")
        }
        return narrowed
    }
}
extension UInt: UnsignedVarint {}
extension UInt16: UnsignedVarint {}
extension UInt32: UnsignedVarint {}
extension UInt64: UnsignedVarint {}

@available(macOS 15.0, *)
extension Int128: BinaryPrimitive {
    func write(to encoder: BinaryEncoderCore) {
        encoder.buffer.writeInteger(UInt64(truncatingIfNeeded: self), endianness: .little)
        encoder.buffer.writeInteger(Int64(truncatingIfNeeded: self >> 64), endianness: .little)
    }
    static func read(from decoder: BinaryDecoderCore) throws -> Int128 {
        let low = try decoder.readFixed(UInt64.self)
        let high = try decoder.readFixed(UInt64.self)
        return Int128(Int64(bitPattern: high)) << 64 | Int128(low)
    }
}

@available(macOS 15.0, *)
extension UInt128: BinaryPrimitive {
    func write(to encoder: BinaryEncoderCore) {
        encoder.buffer.writeInteger(UInt64(truncatingIfNeeded: self), endianness: .little)
        encoder.buffer.writeInteger(UInt64(truncatingIfNeeded: self >> 64), endianness: .little)
    }
    static func read(from decoder: BinaryDecoderCore) throws -> UInt128 {
        let low = try decoder.readFixed(UInt64.self)
        let high = try decoder.readFixed(UInt64.self)
        return UInt128(high) << 64 | UInt128(low)
    }
}

/// Element types whose arrays travel as raw little-endian bytes, copied in one go.
///
/// Every conforming type is trivial (no references, every bit pattern valid), which is what makes
/// the copy sound.
protocol RawNumeric {}
extension Int: RawNumeric {}
extension Int8: RawNumeric {}
extension Int16: RawNumeric {}
extension Int32: RawNumeric {}
extension Int64: RawNumeric {}
extension UInt: RawNumeric {}
extension UInt8: RawNumeric {}
extension UInt16: RawNumeric {}
extension UInt32: RawNumeric {}
extension UInt64: RawNumeric {}
extension Float: RawNumeric {}
extension Double: RawNumeric {}
