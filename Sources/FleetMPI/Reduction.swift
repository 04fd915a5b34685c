/// How ``Communicator/reduce(_:_:root:)``, ``Communicator/allreduce(_:_:)`` and
/// ``Communicator/scan(_:_:)`` combine the ranks' values: MPI's `MPI_Op`.
///
/// The built-in operations are ``sum``, ``prod``, ``min`` and ``max``; any associative closure
/// works too:
///
/// ```swift
/// let total = try await world.allreduce(mine, .sum)
/// let longest = try await world.allreduce(name, Reduction { $0.count >= $1.count ? $0 : $1 })
/// ```
///
/// Values are combined in rank order (`rank 0 ⊕ rank 1 ⊕ …`), so an operation needs to be
/// associative, not commutative. One marked `commutative` also lets large array reductions use
/// the bandwidth-optimal ring algorithm. Arrays are reduced element by element.
public struct Reduction<Value: Sendable>: Sendable {
    @usableFromInline let combine: @Sendable (Value, Value) -> Value
    /// Combines `other` into `accumulator`, element by element (`accumulator[i] = accumulator[i] ⊕ other[i]`).
    @usableFromInline let combineElements: @Sendable (UnsafeMutableBufferPointer<Value>, UnsafeBufferPointer<Value>) -> Void
    /// Combines `lower` into `accumulator` from the left (`accumulator[i] = lower[i] ⊕ accumulator[i]`).
    @usableFromInline let combineElementsFromLeft: @Sendable (UnsafeMutableBufferPointer<Value>, UnsafeBufferPointer<Value>) -> Void
    /// Whether `a ⊕ b == b ⊕ a`, which lets the ring algorithm combine in any order.
    public let isCommutative: Bool
    /// Which of MPI's operations this is, for the built-ins (an MPI library can run those itself).
    @usableFromInline let builtin: BuiltinReduction?

    /// An operation from an associative closure.
    ///
    /// - Parameters:
    ///   - commutative: whether `combine(a, b) == combine(b, a)`; `false` keeps rank order in
    ///     every algorithm.
    ///   - combine: combines two values; it must be associative.
    public init(commutative: Bool = false, _ combine: @escaping @Sendable (Value, Value) -> Value) {
        self.init(commutative: commutative, combine: combine)
    }

    @inlinable
    init(commutative: Bool, combine: @escaping @Sendable (Value, Value) -> Value) {
        self.init(
            commutative: commutative, combine: combine,
            elements: { accumulator, other in
                for index in accumulator.indices { accumulator[index] = combine(accumulator[index], other[index]) }
            },
            elementsFromLeft: { accumulator, lower in
                for index in accumulator.indices { accumulator[index] = combine(lower[index], accumulator[index]) }
            })
    }

    /// An operation with its own element loops (the built-ins: specialized where they are named,
    /// so that `[Double]` sums run as tight loops).
    @inlinable
    init(
        commutative: Bool, combine: @escaping @Sendable (Value, Value) -> Value,
        elements: @escaping @Sendable (UnsafeMutableBufferPointer<Value>, UnsafeBufferPointer<Value>) -> Void,
        elementsFromLeft: (@Sendable (UnsafeMutableBufferPointer<Value>, UnsafeBufferPointer<Value>) -> Void)? = nil,
        builtin: BuiltinReduction? = nil
    ) {
        self.builtin = builtin
        self.combine = combine
        self.isCommutative = commutative
        self.combineElements = elements
        self.combineElementsFromLeft = elementsFromLeft ?? elements
    }

    /// `a ⊕ b`.
    public func callAsFunction(_ a: Value, _ b: Value) -> Value { combine(a, b) }
}

extension Reduction where Value: AdditiveArithmetic {
    /// The sum (`MPI_SUM`).
    @inlinable public static var sum: Reduction {
        Reduction(commutative: true, combine: { $0 + $1 }, elements: { accumulator, other in
            for index in accumulator.indices { accumulator[index] += other[index] }
        }, builtin: .sum)
    }
}

extension Reduction where Value: Numeric {
    /// The product (`MPI_PROD`).
    @inlinable public static var prod: Reduction {
        Reduction(commutative: true, combine: { $0 * $1 }, elements: { accumulator, other in
            for index in accumulator.indices { accumulator[index] *= other[index] }
        }, builtin: .prod)
    }
}

extension Reduction where Value: Comparable {
    /// The smallest value (`MPI_MIN`).
    @inlinable public static var min: Reduction {
        Reduction(commutative: true, combine: { Swift.min($0, $1) }, elements: { accumulator, other in
            for index in accumulator.indices { accumulator[index] = Swift.min(accumulator[index], other[index]) }
        }, builtin: .min)
    }

    /// The largest value (`MPI_MAX`).
    @inlinable public static var max: Reduction {
        Reduction(commutative: true, combine: { Swift.max($0, $1) }, elements: { accumulator, other in
            for index in accumulator.indices { accumulator[index] = Swift.max(accumulator[index], other[index]) }
        }, builtin: .max)
    }
}

/// MPI's built-in operations, as ``Reduction``'s built-ins name them.
@usableFromInline
enum BuiltinReduction: Sendable {
    case sum, prod, min, max
}
