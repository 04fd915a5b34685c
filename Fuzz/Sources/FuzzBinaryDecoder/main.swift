// Decodes arbitrary bytes with FleetWire's BinaryDecoder as several types that cover every
// container and the fast paths. The first byte picks the type. Any crash, hang, unbounded
// allocation or sanitizer report is a bug; thrown DecodingErrors are the expected outcome.

import FleetWire
import Foundation
import FuzzSupport

struct Inner: Codable { var name: String; var weight: Double; var tag: Int8? }

indirect enum Tree: Codable {
    case leaf(Int)
    case node(Tree, Tree)
    case labelled(String, Tree?)
    case empty
}

struct Record: Codable {
    var id: Int
    var flags: [Bool]
    var small: UInt16
    var signed: Int32
    var wide: UInt64
    var samples: [Double]
    var counts: [Int32]
    var inner: Inner
    var inners: [Inner]
    var byName: [String: Inner]
    var byNumber: [Int: [UInt8]]
    var set: Set<String>
    var maybe: [String?]
    var data: Data
    var tree: Tree
}

func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let selector = bytes.first else { return 0 }
    let body = UnsafeRawBufferPointer(rebasing: bytes[1...])
    let decoder = BinaryDecoder()
    switch selector % 6 {
    case 0: _ = try? decoder.decode(Record.self, from: body)
    case 1: _ = try? decoder.decode(Tree.self, from: body)
    case 2: _ = try? decoder.decode([String: [Double]].self, from: body)
    case 3: _ = try? decoder.decode([Inner?].self, from: body)
    case 4: _ = try? decoder.decode(Set<Int64>.self, from: body)
    default: _ = try? decoder.decode(String.self, from: body)
    }
    return 0
}

runLibFuzzer { fuzz($0, $1) }
