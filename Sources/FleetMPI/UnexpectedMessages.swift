import NIOCore

/// The messages that arrived before a receive matched them (MPI's unexpected queue), kept per
/// sender in arrival order, each numbered as it arrived.
///
/// A receive from one rank looks at that rank's messages only, and finds its message first in
/// line in the common case: taking it costs O(1), however many messages other ranks have left
/// waiting. A receive from any rank takes the oldest match across the senders: O(senders) when
/// the first message of each matches. The linear scans of one sender's queue remain for
/// receives that pick a tag out of many waiting messages, as in MPI libraries.
struct UnexpectedMessages {
    private struct Entry {
        let arrival: UInt64
        let message: RankMessage
    }

    private var bySender: [Int: CircularBuffer<Entry>] = [:]
    private var arrivals: UInt64 = 0

    /// How many messages wait.
    private(set) var count = 0

    /// Keeps `message`, after every earlier one. O(1) amortized.
    mutating func append(_ message: RankMessage) {
        arrivals &+= 1
        bySender[message.source, default: CircularBuffer(initialCapacity: 4)].append(Entry(arrival: arrivals, message: message))
        count += 1
    }

    /// Whether a message from `source` waits.
    func contains(source: Int) -> Bool {
        bySender[source].map { !$0.isEmpty } ?? false
    }

    /// The oldest message that matches `pattern`, left in place.
    func first(matching pattern: MessagePattern) -> RankMessage? {
        locate(pattern).map { bySender[$0.source]![$0.index].message }
    }

    /// Takes the oldest message that matches `pattern`.
    mutating func removeFirst(matching pattern: MessagePattern) -> RankMessage? {
        guard let (source, index) = locate(pattern) else { return nil }
        count -= 1
        return bySender[source]!.remove(at: index).message
    }

    /// Where the oldest message that matches `pattern` is: its sender's queue and its place.
    private func locate(_ pattern: MessagePattern) -> (source: Int, index: CircularBuffer<Entry>.Index)? {
        guard count > 0 else { return nil }
        if let source = pattern.source {
            guard let queue = bySender[source], let index = queue.firstIndex(where: { pattern.matches($0.message) }) else { return nil }
            return (source, index)
        }
        var oldest: (source: Int, index: CircularBuffer<Entry>.Index, arrival: UInt64)?
        for (source, queue) in bySender {
            guard let index = queue.firstIndex(where: { pattern.matches($0.message) }) else { continue }
            let arrival = queue[index].arrival
            if oldest.map({ arrival < $0.arrival }) ?? true { oldest = (source, index, arrival) }
        }
        return oldest.map { ($0.source, $0.index) }
    }
}
