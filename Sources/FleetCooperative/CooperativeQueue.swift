/// A bounded first-in, first-out queue between the tasks of one ``CooperativeLoop``.
///
/// ``put(_:timeout:)`` suspends while the queue is full and ``get(timeout:)`` while it is
/// empty — backpressure, like asyncio's `Queue(maxsize)`. Waiting tasks are served in the order
/// they started waiting. The queue belongs to the loop it was made on: it is not `Sendable`,
/// and its elements need not be either.
public final class CooperativeQueue<Element> {
    /// The most elements the queue holds before ``put(_:timeout:)`` waits.
    public let capacity: Int
    private let reactor: Reactor
    @exclusivity(unchecked) private var elements: [Element] = []
    @exclusivity(unchecked) private var head = 0
    /// Tasks waiting in ``get(timeout:)``, by waiter id, oldest first.
    @exclusivity(unchecked) private var getters: [UInt64] = []
    /// Elements handed to a waiting getter, by its waiter id.
    @exclusivity(unchecked) private var handedOver: [UInt64: Element] = [:]
    /// Tasks waiting in ``put(_:timeout:)`` with their elements, oldest first.
    @exclusivity(unchecked) private var putters: [(id: UInt64, element: Element)] = []

    /// Creates an empty queue on `loop`.
    ///
    /// - Parameter capacity: The most elements it holds; at least 1.
    public init(capacity: Int, loop: isolated CooperativeLoop) {
        precondition(capacity >= 1, "a CooperativeQueue holds at least one element")
        self.capacity = capacity
        self.reactor = loop.reactor
    }

    /// The number of elements in the queue.
    public var count: Int { elements.count - head }

    /// Whether the queue is empty.
    public var isEmpty: Bool { count == 0 }

    /// Whether the queue holds ``capacity`` elements.
    public var isFull: Bool { count >= capacity }

    /// Appends `element`, waiting while the queue is full.
    ///
    /// - Parameter timeout: How long to wait for room; nil waits until there is some.
    /// - Throws: ``Timeout`` (the element is not added); `CancellationError`.
    public func put(_ element: Element, timeout: Duration? = nil) async throws {
        try Task.checkCancellation()
        if handOver(element) { return }
        if count < capacity {
            elements.append(element)
            return
        }
        let id = reactor.makeWaiterID()
        putters.append((id, element))
        do {
            try await reactor.suspend(id, deadline: Reactor.deadline(after: timeout), timeout: timeout, operation: "put")
        } catch {
            putters.removeAll { $0.id == id }
            throw error
        }
    }

    /// Removes and returns the oldest element, waiting while the queue is empty.
    ///
    /// - Parameter timeout: How long to wait for an element; nil waits until one comes.
    /// - Throws: ``Timeout``; `CancellationError`.
    public func get(timeout: Duration? = nil) async throws -> Element {
        try Task.checkCancellation()
        if count > 0 { return take() }
        let id = reactor.makeWaiterID()
        getters.append(id)
        do {
            try await reactor.suspend(id, deadline: Reactor.deadline(after: timeout), timeout: timeout, operation: "get")
        } catch {
            getters.removeAll { $0 == id }
            // An element handed over as the wait ended goes back to the front.
            if let element = handedOver.removeValue(forKey: id) { putBack(element) }
            throw error
        }
        return handedOver.removeValue(forKey: id)!
    }

    /// Gives `element` to the oldest waiting getter; false when none waits.
    private func handOver(_ element: Element) -> Bool {
        while !getters.isEmpty {
            let id = getters.removeFirst()
            guard reactor.isWaiting(id) else { continue }
            handedOver[id] = element
            reactor.resume(id)
            return true
        }
        return false
    }

    private func take() -> Element {
        let element = elements[head]
        head += 1
        if head > 64 && head * 2 > elements.count {
            elements.removeFirst(head)
            head = 0
        }
        // Room for the oldest waiting putter.
        while !putters.isEmpty {
            let (id, waiting) = putters.removeFirst()
            guard reactor.isWaiting(id) else { continue }
            elements.append(waiting)
            reactor.resume(id)
            break
        }
        return element
    }

    private func putBack(_ element: Element) {
        if handOver(element) { return }
        if head > 0 {
            head -= 1
            elements[head] = element
        } else {
            elements.insert(element, at: 0)
        }
    }
}
