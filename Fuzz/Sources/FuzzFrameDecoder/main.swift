// Feeds arbitrary bytes to FleetWire's FrameDecoder, split at a point the input chooses, as a
// connection would deliver them, then decodes every frame's payload as a handshake-like value.
// Any crash, hang or sanitizer report is a bug; thrown errors are the expected outcome.

import FleetWire
import FuzzSupport
import NIOCore

struct HelloLike: Codable {
    var protocolName: String
    var version: [UInt16]
    var nonce: [UInt8]
    var peer: [String: String]
}

func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let first = bytes.first else { return 0 }
    var decoder = FrameDecoder(maximumPayloadSize: 1 << 16)
    let split = Int(first) % (bytes.count)
    var buffer = ByteBuffer(bytes: bytes[1..<max(1, split)])
    var frames = [Frame]()
    do {
        while let frame = try decoder.decode(buffer: &buffer) { frames.append(frame) }
        buffer.writeBytes(bytes[max(1, split)...])
        while let frame = try decoder.decode(buffer: &buffer) { frames.append(frame) }
        if let last = try decoder.decodeLast(buffer: &buffer, seenEOF: true) { frames.append(last) }
    } catch {
        // Rejected input: what must happen to malformed frames.
    }
    for frame in frames {
        _ = try? frame.decode(HelloLike.self)
        _ = try? frame.decode(String.self)
    }
    return 0
}

runLibFuzzer { fuzz($0, $1) }
