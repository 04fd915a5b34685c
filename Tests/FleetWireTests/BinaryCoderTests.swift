import Foundation
import NIOCore
import Testing

@testable import FleetWire

private func roundTrip<T: Codable & Equatable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let bytes = try BinaryEncoder().encode(value)
    let decoded = try BinaryDecoder().decode(T.self, from: bytes)
    #expect(decoded == value, sourceLocation: sourceLocation)
    // The ByteBuffer path must give the same bytes and value.
    var buffer = ByteBuffer(bytes: [0xAA])
    buffer.moveReaderIndex(forwardBy: 1)
    try BinaryEncoder().encode(value, into: &buffer)
    #expect(Array(buffer.readableBytesView) == bytes, sourceLocation: sourceLocation)
    #expect(try BinaryDecoder().decode(T.self, from: buffer) == value, sourceLocation: sourceLocation)
}

struct Empty: Codable, Equatable {}

struct Inner: Codable, Equatable {
    var name: String
    var weight: Double
}

struct Outer: Codable, Equatable {
    var id: Int
    var inner: Inner
    var inners: [Inner]
    var tags: Set<String>
    var note: String?
    var missing: Int?
    var nested: [[Int32]]
    var flags: [Bool]
    var byName: [String: Inner]
    var byNumber: [Int: String]
    var byPoint: [Inner.Key: Int]
    var empty: Empty
    var empties: [Empty]
    var data: Data
    var when: Date
    var id2: UUID
}

extension Inner {
    struct Key: Codable, Hashable { var x: Int16; var y: Int16 }
}

indirect enum Tree: Codable, Equatable {
    case leaf(Int)
    case node(Tree, Tree)
    case empty
}

indirect enum Shape: Codable, Equatable {
    case circle(radius: Double)
    case rectangle(width: Double, height: Double)
    case labelled(String, Shape?)
    case point
}

enum Color: String, Codable, Equatable { case red, green, blue }

struct Extremes: Codable, Equatable {
    var i: Int, i8: Int8, i16: Int16, i32: Int32, i64: Int64
    var u: UInt, u8: UInt8, u16: UInt16, u32: UInt32, u64: UInt64
    var i128: Int128, u128: UInt128
}

@Suite("BinaryEncoder and BinaryDecoder")
struct BinaryCoderTests {
    @Test func scalars() throws {
        try roundTrip(true)
        try roundTrip(false)
        try roundTrip("")
        try roundTrip("héllo, wörld — 🚀")
        try roundTrip(0)
        try roundTrip(-1)
        try roundTrip(3.25)
        try roundTrip(Float(-0.5))
        try roundTrip(Color.green)
    }

    @Test func integerExtremes() throws {
        try roundTrip(Extremes(i: .min, i8: .min, i16: .min, i32: .min, i64: .min,
                               u: .min, u8: .min, u16: .min, u32: .min, u64: .min, i128: .min, u128: .min))
        try roundTrip(Extremes(i: .max, i8: .max, i16: .max, i32: .max, i64: .max,
                               u: .max, u8: .max, u16: .max, u32: .max, u64: .max, i128: .max, u128: .max))
        try roundTrip(Extremes(i: -1, i8: -1, i16: -1, i32: -1, i64: -1,
                               u: 1, u8: 1, u16: 1, u32: 1, u64: 1, i128: -1, u128: 1))
        for value in [Int64.min, -64, -63, 63, 64, 127, 128, 16_383, 16_384, .max] { try roundTrip(value) }
        for value in [UInt64.min, 127, 128, 1 << 35, .max] { try roundTrip(value) }
    }

    @Test func smallIntegersTakeOneByte() throws {
        #expect(try BinaryEncoder().encode(5) == [10])      // zig-zag
        #expect(try BinaryEncoder().encode(-3) == [5])
        #expect(try BinaryEncoder().encode(UInt32(300)) == [0xAC, 0x02])
    }

    @Test func floatingPointSpecials() throws {
        for value in [Double.infinity, -.infinity, .zero, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude, .pi] {
            try roundTrip(value)
        }
        let nan = try BinaryDecoder().decode(Double.self, from: BinaryEncoder().encode(Double.nan))
        #expect(nan.isNaN)
        let signalling = Double(bitPattern: 0x7FF0_0000_0000_0001)
        let back = try BinaryDecoder().decode([Double].self, from: BinaryEncoder().encode([signalling, .nan]))
        #expect(back[0].bitPattern == signalling.bitPattern)
        let floats = try BinaryDecoder().decode([Float].self, from: BinaryEncoder().encode([Float.infinity, -.infinity, .nan]))
        #expect(floats[0] == .infinity && floats[1] == -.infinity && floats[2].isNaN)
    }

    @Test func nestedStructsCollectionsAndFoundationTypes() throws {
        let outer = Outer(
            id: 42,
            inner: Inner(name: "a", weight: 1.5),
            inners: [Inner(name: "b", weight: 2), Inner(name: "", weight: -3)],
            tags: ["x", "y", "z"],
            note: "present",
            missing: nil,
            nested: [[], [1, 2, 3], [Int32.min, Int32.max]],
            flags: [true, false, true],
            byName: ["one": Inner(name: "1", weight: 1), "two": Inner(name: "2", weight: 2)],
            byNumber: [1: "one", -2: "minus two"],
            byPoint: [Inner.Key(x: 1, y: 2): 3],
            empty: Empty(),
            empties: [Empty(), Empty(), Empty()],
            data: Data([0, 1, 2, 255]),
            when: Date(timeIntervalSince1970: 1_700_000_000.25),
            id2: UUID()
        )
        try roundTrip(outer)
    }

    @Test func emptyValues() throws {
        try roundTrip(Empty())
        try roundTrip([Empty]())
        try roundTrip([Empty(), Empty()])
        try roundTrip([Int]())
        try roundTrip([String]())
        try roundTrip([String: Int]())
        try roundTrip(Data())
        try roundTrip("")
        #expect(try BinaryEncoder().encode(Empty()).isEmpty)
    }

    @Test func optionals() throws {
        try roundTrip(Int?.none)
        try roundTrip(Int?.some(0))
        try roundTrip(Int??.some(.none))
        try roundTrip(Int??.some(.some(7)))
        try roundTrip([1, nil, 3] as [Int?])
        try roundTrip(["a": nil, "b": 2] as [String: Int?])
    }

    @Test func enumsWithPayloads() throws {
        try roundTrip(Shape.circle(radius: 2))
        try roundTrip(Shape.rectangle(width: 3, height: 4))
        try roundTrip(Shape.labelled("box", .rectangle(width: 1, height: 1)))
        try roundTrip(Shape.labelled("none", nil))
        try roundTrip(Shape.point)
        try roundTrip([Shape.point, .circle(radius: 1)])
        try roundTrip(Tree.node(.leaf(1), .node(.empty, .leaf(-2))))
    }

    @Test func numericArraysAreRawLittleEndianBytes() throws {
        let doubles = (0..<1000).map { Double($0) * 0.5 }
        let bytes = try BinaryEncoder().encode(doubles)
        #expect(bytes.count == 2 + 8 * 1000)             // varint count (2 bytes) + raw bytes
        #expect(Array(bytes[2...]) == doubles.withUnsafeBytes { Array($0) })
        try roundTrip(doubles)
        try roundTrip([Int32](arrayLiteral: .min, 0, .max))
        try roundTrip([UInt8](0...255))
        try roundTrip([Int](arrayLiteral: .min, -1, .max))
        try roundTrip([Float](repeating: 1.5, count: 17))
    }

    @Test func noFieldNamesOnTheWire() throws {
        struct Named: Codable { var aVeryLongFieldNameThatMustNotAppear: Int }
        let bytes = try BinaryEncoder().encode(Named(aVeryLongFieldNameThatMustNotAppear: 1))
        #expect(bytes == [2])
    }

    @Test func urlsTravelAsTheirAbsoluteString() throws {
        struct Link: Codable, Equatable { var url: URL; var flag: Bool }
        try roundTrip(Link(url: URL(string: "https://example.org/a?b=c#d")!, flag: true))
        let relative = URL(string: "page.html", relativeTo: URL(string: "https://example.org/dir/"))!
        let decoded = try BinaryDecoder().decode(URL.self, from: BinaryEncoder().encode(relative))
        #expect(decoded.absoluteString == "https://example.org/dir/page.html")
    }

    @Test func failedEncodeLeavesTheBufferAsItWas() throws {
        struct Failing: Encodable {
            struct Refused: Error {}
            func encode(to encoder: any Encoder) throws {
                var container = encoder.unkeyedContainer()
                try container.encode("written before the failure")
                throw Refused()
            }
        }
        var buffer = ByteBuffer(string: "kept")
        #expect(throws: Failing.Refused.self) { try BinaryEncoder().encode(Failing(), into: &buffer) }
        #expect(String(buffer: buffer) == "kept")
    }

    @Test func userInfoReachesTheValues() throws {
        struct Probe: Codable {
            static let key = CodingUserInfoKey(rawValue: "probe")!
            init() {}
            init(from decoder: any Decoder) throws { #expect(decoder.userInfo[Probe.key] as? String == "yes") }
            func encode(to encoder: any Encoder) throws { #expect(encoder.userInfo[Probe.key] as? String == "yes") }
        }
        var encoder = BinaryEncoder()
        encoder.userInfo[Probe.key] = "yes"
        var decoder = BinaryDecoder()
        decoder.userInfo[Probe.key] = "yes"
        _ = try decoder.decode(Probe.self, from: encoder.encode(Probe()))
    }
}

@Suite("BinaryDecoder on malformed input")
struct BinaryDecoderMalformedTests {
    private func expectCorrupted<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], mentioning text: String,
                                               sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try BinaryDecoder().decode(type, from: bytes)
            Issue.record("decoded \(T.self) from \(bytes)", sourceLocation: sourceLocation)
        } catch let DecodingError.dataCorrupted(context) {
            #expect(context.debugDescription.contains(text), "\(context.debugDescription)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func truncatedInput() throws {
        let full = try BinaryEncoder().encode(Inner(name: "abcdef", weight: 2))
        for cut in 0..<full.count {
            #expect(throws: DecodingError.self) { try BinaryDecoder().decode(Inner.self, from: Array(full[..<cut])) }
        }
        expectCorrupted(Double.self, [1, 2, 3], mentioning: "expected 8 bytes")
    }

    @Test func lengthsPastTheEnd() {
        expectCorrupted(String.self, [0xFF, 0xFF, 0xFF, 0x7F, 65], mentioning: "past the end")
        expectCorrupted([Double].self, [0x80, 0x80, 0x80, 0x80, 0x10], mentioning: "past the end")
        expectCorrupted([String].self, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], mentioning: "past the end")
        expectCorrupted([String: Int].self, [0xFF, 0xFF, 0x7F], mentioning: "past the end")
        expectCorrupted(Data.self, [10, 1, 2], mentioning: "past the end")
        expectCorrupted(Set<Int>.self, [0xFF, 0xFF, 0xFF, 0xFF], mentioning: "past the end")
    }

    @Test func badVarints() {
        // 11 continuation bytes: longer than any 64-bit varint.
        expectCorrupted(UInt64.self, [UInt8](repeating: 0xFF, count: 11), mentioning: "overflows")
        expectCorrupted(UInt64.self, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02], mentioning: "overflows")
        expectCorrupted(Int.self, [0x80], mentioning: "expected 1 more byte")
        expectCorrupted(Int32.self, [0x80, 0x80, 0x80, 0x80, 0x20], mentioning: "does not fit in Int32")
        expectCorrupted(UInt16.self, [0x80, 0x80, 0x04], mentioning: "does not fit in UInt16")
    }

    @Test func invalidValues() {
        expectCorrupted(Bool.self, [2], mentioning: "Bool must be 0 or 1")
        expectCorrupted(String.self, [2, 0xC3, 0x28], mentioning: "not valid UTF-8")
        expectCorrupted(Int?.self, [7], mentioning: "presence byte")
        expectCorrupted([Int: Int].self, [2, 2, 4, 2, 6], mentioning: "duplicate dictionary key")
        expectCorrupted(Int.self, [2, 0], mentioning: "unexpected bytes after the value")
    }

    @Test func unknownEnumCaseIsAnError() throws {
        let bytes = try BinaryEncoder().encode("triangle")    // a key no Shape case has
        #expect(throws: DecodingError.self) { try BinaryDecoder().decode(Shape.self, from: bytes) }
        #expect(throws: DecodingError.self) { try BinaryDecoder().decode(Shape.self, from: [3, 0x61, 0x62, 0x63]) }
        #expect(throws: DecodingError.self) { try BinaryDecoder().decode(Shape.self, from: []) }
    }

    @Test func emptyElementsCannotBeMultipliedByNesting() throws {
        // 1,000 inner arrays each claiming 65,536 empty elements: 3 bytes each on the wire.
        var bytes: [UInt8] = [0xE8, 0x07]                     // outer count 1,000
        for _ in 0..<1000 { bytes += [0x80, 0x80, 0x04] }     // inner count 65,536
        #expect(throws: DecodingError.self) { try BinaryDecoder().decode([[Empty]].self, from: bytes) }
        // A genuine short array of empty values still decodes.
        #expect(try BinaryDecoder().decode([[Empty]].self, from: [1, 3]) == [[Empty(), Empty(), Empty()]])
    }

    @Test func nestingIsBounded() throws {
        var tree = Tree.leaf(0)
        for _ in 0..<300 { tree = .node(tree, .empty) }
        let bytes = try BinaryEncoder().encode(tree)
        expectCorrupted(Tree.self, bytes, mentioning: "nested deeper than")
        var decoder = BinaryDecoder()
        decoder.maximumDepth = 2_000
        #expect(try decoder.decode(Tree.self, from: bytes) == tree)
    }

    @Test func randomBytesNeverCrash() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<64 {
            for _ in 0..<50 {
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                _ = try? BinaryDecoder().decode(Outer.self, from: bytes)
                _ = try? BinaryDecoder().decode(Shape.self, from: bytes)
                _ = try? BinaryDecoder().decode([String: [Double]].self, from: bytes)
            }
        }
    }
}
