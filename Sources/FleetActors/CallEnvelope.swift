import FleetWire
import NIOCore

// The payloads of FleetActors' frames. Every one starts with the call ID where it has one.
//
// call:      callID u64 | argumentsLength u32 | arguments | CallHeader (see writeCallHeader)
//            arguments: per argument, u32 length then its binary encoding
//            The header trails the arguments so that the encoder can write arguments straight
//            into the frame's buffer before it knows the recipient and the target.
// reply:     callID u64 | outcome u8 | body (see ReplyOutcome)
// cancel:    callID u64
// introduce: Introduction (binary coder)

/// Where a call's arguments start: after the call ID and the arguments' length.
let callPrefixSize = 12

/// The part of a call that names what to run. Written by hand rather than by the binary coder:
/// it is on every call's path.
struct CallHeader {
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
}

/// The first frame each side sends after the handshake.
struct Introduction: Codable {
    var node: NodeID
}

extension ByteBuffer {
    /// A fresh call buffer: room for the call ID and the arguments' length (and, in front, for
    /// the frame's header).
    static func callBuffer() -> ByteBuffer {
        var buffer = Frame.payloadBuffer(capacity: 256)
        buffer.writeInteger(UInt64(0))
        buffer.writeInteger(UInt32(0))
        return buffer
    }

    /// A reply buffer for `callID` with `outcome`; append the body.
    static func replyBuffer(callID: UInt64, outcome: ReplyOutcome) -> ByteBuffer {
        // Room for small results, so that encoding one does not grow the buffer, and in front
        // for the frame's header.
        var buffer = Frame.payloadBuffer(capacity: 64)
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

extension ByteBuffer {
    /// Writes a call header: recipient node (2 × u64), number (u64), name (u8 flag, then a
    /// string), target (string), substitution count (u16) and each substitution (string); a
    /// string is a u32 length and UTF-8.
    mutating func writeCallHeader(_ header: CallHeader) {
        writeInteger(header.recipient.node.high)
        writeInteger(header.recipient.node.low)
        writeInteger(header.recipient.number)
        if let name = header.recipient.name {
            writeInteger(UInt8(1))
            writeLengthPrefixedString(name)
        } else {
            writeInteger(UInt8(0))
        }
        writeLengthPrefixedString(header.target)
        writeInteger(UInt16(header.genericSubstitutions.count))
        for substitution in header.genericSubstitutions { writeLengthPrefixedString(substitution) }
    }

    /// Reads what ``writeCallHeader(_:)`` wrote; `nil` when the bytes are not a whole header.
    /// A target named in `targets` (the connection's recent ones) is not made again.
    mutating func readCallHeader(reusing targets: inout TargetNames) -> CallHeader? {
        guard let high = readInteger(as: UInt64.self), let low = readInteger(as: UInt64.self),
              let number = readInteger(as: UInt64.self), let hasName = readInteger(as: UInt8.self)
        else { return nil }
        var name: String?
        if hasName == 1 {
            guard let read = readLengthPrefixedString() else { return nil }
            name = read
        }
        guard let target = readTargetName(reusing: &targets), let count = readInteger(as: UInt16.self) else { return nil }
        var substitutions: [String] = []
        for _ in 0..<count {
            guard let substitution = readLengthPrefixedString() else { return nil }
            substitutions.append(substitution)
        }
        guard readableBytes == 0 else { return nil }
        let recipient = FleetActorID(node: NodeID(high: high, low: low), number: number, name: name)
        return CallHeader(recipient: recipient, target: target, genericSubstitutions: substitutions)
    }

    private mutating func writeLengthPrefixedString(_ string: String) {
        writeInteger(UInt32(string.utf8.count))
        writeString(string)
    }

    private mutating func readLengthPrefixedString() -> String? {
        guard let length = readInteger(as: UInt32.self) else { return nil }
        return readString(length: Int(length))
    }

    /// A length-prefixed target name: one of `targets` when its bytes are the same, else a new
    /// string, which `targets` then keeps.
    private mutating func readTargetName(reusing targets: inout TargetNames) -> String? {
        guard let length = getInteger(at: readerIndex, as: UInt32.self), readableBytes - 4 >= Int(length) else { return nil }
        moveReaderIndex(forwardBy: 4)
        let known = withUnsafeReadableBytes { targets.name(of: UnsafeRawBufferPointer(rebasing: $0[..<Int(length)])) }
        if let known {
            moveReaderIndex(forwardBy: Int(length))
            return known
        }
        guard let name = readString(length: Int(length)) else { return nil }
        targets.keep(name)
        return name
    }
}

/// The target names a connection received lately: a call to one of them makes no new string
/// of its name (a mangled name is too long to be stored inline).
///
/// Complexity: a lookup compares the bytes with each of at most ``capacity`` names.
struct TargetNames {
    private var names: [String] = []
    private var next = 0
    static let capacity = 8

    /// The kept name whose UTF-8 is `bytes`, if there is one.
    func name(of bytes: UnsafeRawBufferPointer) -> String? {
        for name in names {
            let same = name.utf8.withContiguousStorageIfAvailable { utf8 in
                utf8.count == bytes.count && UnsafeRawBufferPointer(utf8).elementsEqual(bytes)
            }
            if same == true { return name }
        }
        return nil
    }

    /// Keeps `name`, in place of the oldest when full.
    mutating func keep(_ name: String) {
        if names.count < Self.capacity {
            names.append(name)
        } else {
            names[next] = name
            next = (next + 1) % Self.capacity
        }
    }
}
