/// Where a posted receive's message goes as its bytes arrive, instead of into a buffer of its
/// own: the shared-memory transport hands the sink each piece of the message's body straight
/// from the ring, so a large collective chunk is combined into (or copied to) the result as it
/// comes, without a copy in between. Transports that deliver whole messages (TCP, an MPI
/// library) ignore sinks; the receive then gets its message as usual.
///
/// A sink lives on the rank's loop: the collective that makes it runs there, and the transport
/// feeds it there, one piece after another, in order.
class MessageSink: @unchecked Sendable {
    // @unchecked Sendable: a sink is made, fed and read only on its rank's event loop (the
    // collective that posts it runs there, and the transport's drain that feeds it does too);
    // it crosses no thread, it is only stored in a (Sendable) posted receive.

    /// The message body's length the sink takes: a message of another length is delivered as
    /// usual (and the collective reports the mismatch).
    let length: Int
    /// Bytes taken so far.
    private(set) var received = 0

    init(length: Int) {
        self.length = length
    }

    /// Whether the whole body went through the sink.
    var isFull: Bool { received == length }

    /// Takes the next piece of the body.
    final func take(_ bytes: UnsafeRawBufferPointer) {
        precondition(received + bytes.count <= length, "a message sink got more than its length")
        consume(bytes, at: received)
        received += bytes.count
    }

    /// Handles `bytes`, which belong at byte `offset` of the body.
    func consume(_ bytes: UnsafeRawBufferPointer, at offset: Int) {}
}

/// An array a collective works on in place, shared with the sinks that write into it.
final class ArrayBox<Element> {
    var elements: [Element]

    init(_ elements: [Element]) {
        self.elements = elements
    }
}

/// A sink that writes a chunk of numbers into `box.elements[range]`: a copy, or combined with what
/// is there by a reduction (`into[i] = into[i] ⊕ incoming[i]`).
final class ArrayChunkSink<T: BitwiseCopyable & Sendable>: MessageSink, @unchecked Sendable {
    // @unchecked Sendable, as for every ``MessageSink``: made, fed and read on the rank's loop only.
    private let box: ArrayBox<T>
    private let range: Range<Int>
    private let operation: Reduction<T>?
    /// Where the chunk's own values are, when not in the chunk itself: each piece combines with
    /// them, and the result goes into the chunk.
    private let source: [T]?
    /// The bytes of an element split between two pieces.
    private var carry: [UInt8] = []
    /// Aligned room for pieces to combine: ring records need not be aligned for `T`.
    private var scratch: [T] = []

    /// A sink for `range` of `box`; with `combining`, the incoming values are combined into the
    /// chunk (with those of `source` instead, when given: the chunk then gets the result), else
    /// they replace it.
    init(_ box: ArrayBox<T>, range: Range<Int>, combining operation: Reduction<T>?, source: [T]? = nil) {
        self.box = box
        self.range = range
        self.operation = operation
        self.source = source
        super.init(length: range.count * MemoryLayout<T>.stride)
    }

    override func consume(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        let stride = MemoryLayout<T>.stride
        guard let operation else {
            box.elements.withUnsafeMutableBytes { target in
                let start = range.lowerBound * stride + offset
                UnsafeMutableRawBufferPointer(rebasing: target[start..<(start + bytes.count)]).copyMemory(from: bytes)
            }
            return
        }
        var bytes = bytes[...]
        var element = (offset - carry.count) / stride + range.lowerBound
        if !carry.isEmpty {
            let needed = stride - carry.count
            carry += bytes.prefix(needed)
            bytes = bytes.dropFirst(needed)
            guard carry.count == stride else { return }
            carry.withUnsafeBytes { combine($0, at: element, operation) }
            carry.removeAll(keepingCapacity: true)
            element += 1
        }
        while bytes.count >= stride {
            let whole = Swift.min(bytes.count / stride, 8192)
            combine(UnsafeRawBufferPointer(rebasing: bytes.prefix(whole * stride)), at: element, operation)
            bytes = bytes.dropFirst(whole * stride)
            element += whole
        }
        carry = Array(bytes)
    }

    /// Combines the whole elements in `bytes` into `box.elements[element...]`, through an aligned
    /// copy when `bytes` is not aligned for `T`.
    private func combine(_ bytes: UnsafeRawBufferPointer, at element: Int, _ operation: Reduction<T>) {
        let count = bytes.count / MemoryLayout<T>.stride
        if let source {
            // The piece's own values first, while they are about to be combined (in cache).
            box.elements.withUnsafeMutableBufferPointer { target in
                source.withUnsafeBufferPointer { own in
                    _ = UnsafeMutableBufferPointer(rebasing: target[element..<(element + count)])
                        .update(fromContentsOf: UnsafeBufferPointer(rebasing: own[element..<(element + count)]))
                }
            }
        }
        if Int(bitPattern: bytes.baseAddress) % MemoryLayout<T>.alignment == 0 {
            box.elements.withUnsafeMutableBufferPointer { target in
                operation.combineElements(
                    UnsafeMutableBufferPointer(rebasing: target[element..<(element + count)]),
                    bytes.assumingMemoryBound(to: T.self))
            }
            return
        }
        if scratch.count < count {
            scratch = [T](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        }
        scratch.withUnsafeMutableBytes { aligned in
            aligned.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        }
        box.elements.withUnsafeMutableBufferPointer { target in
            scratch.withUnsafeBufferPointer { incoming in
                operation.combineElements(
                    UnsafeMutableBufferPointer(rebasing: target[element..<(element + count)]),
                    UnsafeBufferPointer(rebasing: incoming[0..<count]))
            }
        }
    }
}
