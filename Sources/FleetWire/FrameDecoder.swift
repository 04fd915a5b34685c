import NIOCore

/// Splits a byte stream into ``Frame``s, enforcing the payload size limit.
///
/// An oversize length or an unknown kind is rejected as soon as the 5-byte header arrives, before
/// any payload is buffered. Use it in a pipeline as `ByteToMessageHandler(FrameDecoder())`.
public struct FrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = Frame

    /// The largest payload accepted, in bytes.
    public var maximumPayloadSize: Int { limit?.value ?? fixedLimit }

    /// Frames at least this large get their whole size reserved when their header arrives.
    static let reserveThreshold: UInt32 = 64 * 1024

    private let fixedLimit: Int
    private let limit: PayloadLimit?
    /// Where frames go before the pipeline, when set (``FrameSink``).
    private let sink: FrameSink?

    /// Creates a decoder that accepts payloads of up to `maximumPayloadSize` bytes.
    public init(maximumPayloadSize: Int = Frame.defaultMaximumPayloadSize) {
        self.fixedLimit = min(maximumPayloadSize, Int(UInt32.max))
        self.limit = nil
        self.sink = nil
    }

    /// Creates a decoder whose limit can change while it runs (the handshake raises it), and
    /// which offers frames to `sink` first.
    init(limit: PayloadLimit, sink: FrameSink? = nil) {
        self.fixedLimit = limit.value
        self.limit = limit
        self.sink = sink
    }

    /// Decodes one frame for the pipeline, or returns `nil` when more bytes are needed. Frames
    /// that the ``FrameSink`` takes meanwhile are not returned.
    public mutating func decode(buffer: inout ByteBuffer) throws -> Frame? {
        while let frame = try decodeOne(buffer: &buffer) {
            if let take = sink?.take, take(frame) { continue }
            return frame
        }
        return nil
    }

    /// Decodes the next frame, or returns `nil` when more bytes are needed.
    private func decodeOne(buffer: inout ByteBuffer) throws -> Frame? {
        guard let kindByte = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
              let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self)
        else { return nil }
        guard let kind = Frame.Kind(rawValue: kindByte) else {
            throw WireError.unknownFrameKind(kindByte)
        }
        let maximum = maximumPayloadSize
        guard length <= maximum else {
            throw WireError.frameTooLarge(size: Int(length), limit: maximum)
        }
        let frameSize = Frame.headerSize + Int(length)
        guard buffer.readableBytes >= frameSize else {
            // A large frame: make room for all of it at once rather than growing the buffer
            // (and copying what arrived) step by step as it comes in.
            if length >= Self.reserveThreshold {
                buffer.reserveCapacity(minimumWritableBytes: frameSize - buffer.readableBytes)
            }
            return nil
        }
        buffer.moveReaderIndex(forwardBy: Frame.headerSize)
        return Frame(kind: kind, payload: buffer.readSlice(length: Int(length))!)
    }

    /// Decodes what is left when the connection ends; a partial frame is an error.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> Frame? {
        if let frame = try decode(buffer: &buffer) { return frame }
        guard buffer.readableBytes == 0 else {
            let expected = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self)
                .map { Int($0) + Frame.headerSize } ?? Frame.headerSize
            throw WireError.truncatedFrame(received: buffer.readableBytes, expected: expected)
        }
        return nil
    }
}

/// A payload limit shared by a connection's ``FrameDecoder`` and its handshake: small until the
/// peer is authenticated, so that an unauthenticated peer cannot make the server buffer large
/// frames, then the configured limit. Used only on the connection's event loop.
final class PayloadLimit {
    /// Handshake messages are a few hundred bytes; this leaves room and no more.
    static let handshake = 64 * 1024

    var value: Int

    init(_ value: Int) {
        self.value = min(value, Int(UInt32.max))
    }
}
