import FleetWire
import NIOCore

// The payloads of FleetActors' frames. Every one starts with the call ID where it has one.
//
// call:      callID u64 | argumentsLength u32 | arguments | CallHeader (binary coder)
//            arguments: per argument, u32 length then its binary encoding
//            The header trails the arguments so that the encoder can write arguments straight
//            into the frame's buffer before it knows the recipient and the target.
// reply:     callID u64 | outcome u8 | body (see ReplyOutcome)
// cancel:    callID u64
// introduce: Introduction (binary coder)

/// Where a call's arguments start: after the call ID and the arguments' length.
let callPrefixSize = 12

/// The part of a call that names what to run.
struct CallHeader: Codable {
    var recipient: FleetActorID
    /// The mangled name of the distributed function; empty to ask whether the recipient exists.
    var target: String
    /// Mangled names of the generic substitutions, in order.
    var genericSubstitutions: [String]
}

/// The first byte of a reply's body.
enum ReplyOutcome: UInt8 {
    /// The function returned; the body is the value.
    case value = 0
    /// The function returned `Void`; no body.
    case void = 1
    /// The function threw a `Codable` error: a u32 length and ``ThrownError``, then the error.
    case codableError = 2
    /// The function threw another error: ``ThrownError``.
    case error = 3
    /// The system could not run the call: ``CallFailure``.
    case failure = 4
}

/// What is known of a thrown error on the side that threw it.
struct ThrownError: Codable {
    /// `_mangledTypeName` of the error's type, to find it on the receiving side.
    var mangledTypeName: String?
    /// `String(reflecting:)` of the error's type.
    var typeName: String
    /// `String(describing:)` of the error.
    var message: String
}

/// Why a node could not run a call.
enum CallFailure: Codable, Error {
    case actorNotFound
    case targetNotFound(String)
    case invalidArguments(String)
    case invalidResult(String)
    case shuttingDown
}

/// The first frame each side sends after the handshake.
struct Introduction: Codable {
    var node: NodeID
}

extension ByteBuffer {
    /// A fresh call buffer: room for the call ID and the arguments' length.
    static func callBuffer() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(256)
        buffer.writeInteger(UInt64(0))
        buffer.writeInteger(UInt32(0))
        return buffer
    }

    /// A reply buffer for `callID` with `outcome`; append the body.
    static func replyBuffer(callID: UInt64, outcome: ReplyOutcome) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(callID)
        buffer.writeInteger(outcome.rawValue)
        return buffer
    }
}

extension ByteBuffer {
    /// Writes a u32 length, then what `body` writes, then sets the length to what it wrote.
    /// When `body` throws, the buffer is left as it was.
    mutating func writeLengthPrefixed(_ body: (inout ByteBuffer) throws -> Void) rethrows {
        let lengthIndex = writerIndex
        writeInteger(UInt32(0))
        do {
            try body(&self)
        } catch {
            moveWriterIndex(to: lengthIndex)
            throw error
        }
        setInteger(UInt32(writerIndex - lengthIndex - 4), at: lengthIndex)
    }

    /// Reads a u32 length and that many bytes.
    mutating func readLengthPrefixedSlice() -> ByteBuffer? {
        guard let length = getInteger(at: readerIndex, as: UInt32.self),
              let slice = getSlice(at: readerIndex + 4, length: Int(length))
        else { return nil }
        moveReaderIndex(forwardBy: 4 + Int(length))
        return slice
    }
}
