@testable import FleetMPI
import NIOCore
import Testing

/// The matching engine on its own: what a message matches, in which order, and how failures and
/// finished ranks end waits.
@Suite("Mailbox")
struct MailboxTests {
    func message(_ source: Int, tag: Int32, _ text: String, context: UInt64 = 2) -> RankMessage {
        RankMessage(context: context, source: source, tag: tag, data: ByteBuffer(string: text))
    }

    func text(_ message: RankMessage) -> String {
        String(buffer: message.data)
    }

    @Test func anUnexpectedMessageWaitsForItsReceive() async throws {
        let mailbox = Mailbox()
        mailbox.deliver(message(1, tag: 3, "three"))
        mailbox.deliver(message(1, tag: 4, "four"))
        // Tag 4 first: matching is by pattern, then by arrival.
        #expect(text(try await mailbox.post(MessagePattern(context: 2, source: 1, tag: 4)).wait()) == "four")
        #expect(text(try await mailbox.post(MessagePattern(context: 2, source: nil, tag: nil)).wait()) == "three")
    }

    @Test func aReceiveFromAnyRankTakesTheOldestMessageAcrossSenders() async throws {
        let mailbox = Mailbox()
        mailbox.deliver(message(2, tag: 1, "a"))
        mailbox.deliver(message(1, tag: 1, "b"))
        mailbox.deliver(message(2, tag: 1, "c"))
        mailbox.deliver(message(1, tag: 2, "d"))
        let any = MessagePattern(context: 2, source: nil, tag: nil)
        #expect(text(try #require(try mailbox.peek(any))) == "a")
        #expect(text(try await mailbox.post(any).wait()) == "a")
        // From rank 1 with tag 2: past rank 1's older message of tag 1.
        #expect(text(try await mailbox.post(MessagePattern(context: 2, source: 1, tag: 2)).wait()) == "d")
        #expect(text(try await mailbox.post(MessagePattern(context: 2, source: nil, tag: 1)).wait()) == "b")
        #expect(text(try await mailbox.post(any).wait()) == "c")
        #expect(try mailbox.peek(any) == nil)
        #expect(mailbox.mayReceiveDirectly(from: 1))
    }

    @Test func manyWaitingMessagesAreTakenInOrderPerSenderAndTag() async throws {
        let mailbox = Mailbox()
        for index in 0..<3000 { mailbox.deliver(message(index % 3, tag: Int32(index % 5), "\(index)")) }
        #expect(!mailbox.mayReceiveDirectly(from: 2))
        // Rank 2's messages of tag 4, in order, then everything else from any rank, in order.
        let fromTwo = (0..<3000).filter { $0 % 3 == 2 && $0 % 5 == 4 }
        for index in fromTwo {
            #expect(text(try await mailbox.post(MessagePattern(context: 2, source: 2, tag: 4)).wait()) == "\(index)")
        }
        let rest = (0..<3000).filter { !($0 % 3 == 2 && $0 % 5 == 4) }
        for index in rest {
            #expect(text(try await mailbox.post(MessagePattern(context: 2, source: nil, tag: nil)).wait()) == "\(index)")
        }
        #expect(mailbox.mayReceiveDirectly(from: 2))
    }

    @Test func postedReceivesTakeMessagesInPostingOrder() async throws {
        let mailbox = Mailbox()
        let first = mailbox.post(MessagePattern(context: 2, source: nil, tag: 1))
        let second = mailbox.post(MessagePattern(context: 2, source: nil, tag: 1))
        mailbox.deliver(message(0, tag: 1, "a"))
        mailbox.deliver(message(1, tag: 1, "b"))
        #expect(text(try await second.wait()) == "b")
        #expect(text(try await first.wait()) == "a")
    }

    @Test func contextsKeepCommunicatorsApart() async throws {
        let mailbox = Mailbox()
        mailbox.deliver(message(0, tag: 1, "parent", context: 2))
        mailbox.deliver(message(0, tag: 1, "child", context: 8))
        #expect(text(try await mailbox.post(MessagePattern(context: 8, source: 0, tag: 1)).wait()) == "child")
        #expect(try mailbox.peek(MessagePattern(context: 8, source: nil, tag: nil)) == nil)
        #expect(try mailbox.peek(MessagePattern(context: 2, source: nil, tag: nil)).map(text) == "parent")
    }

    @Test func aFailureEndsEveryWaitAndEveryLaterOne() async throws {
        let mailbox = Mailbox()
        let waiting = mailbox.post(MessagePattern(context: 2, source: 1, tag: nil))
        mailbox.fail(.rankFailed(rank: 1, reason: "killed"))
        await #expect(throws: CommunicatorError.rankFailed(rank: 1, reason: "killed")) { try await waiting.wait() }
        let later = mailbox.post(MessagePattern(context: 2, source: 0, tag: nil))
        await #expect(throws: CommunicatorError.rankFailed(rank: 1, reason: "killed")) { try await later.wait() }
        // The first failure reported stays.
        mailbox.fail(.launcherLost("gone"))
        #expect(mailbox.failure == .rankFailed(rank: 1, reason: "killed"))
    }

    @Test func aFinishedRankEndsTheWaitsOnItAlone() async throws {
        let mailbox = Mailbox()
        mailbox.deliver(message(1, tag: 0, "last words"))
        let fromOne = mailbox.post(MessagePattern(context: 2, source: 1, tag: 5))
        let fromAnyone = mailbox.post(MessagePattern(context: 2, source: nil, tag: 5))
        mailbox.finished(1)
        await #expect(throws: CommunicatorError.rankFinished(rank: 1)) { try await fromOne.wait() }
        #expect(fromAnyone.outcome == nil)
        // What it sent before its goodbye can still be received.
        #expect(text(try await mailbox.post(MessagePattern(context: 2, source: 1, tag: 0)).wait()) == "last words")
        mailbox.deliver(message(2, tag: 5, "from two"))
        #expect(text(try await fromAnyone.wait()) == "from two")
    }

    @Test func aWithdrawnReceiveTakesNoMessage() async throws {
        let mailbox = Mailbox()
        let withdrawn = mailbox.post(MessagePattern(context: 2, source: 0, tag: 1))
        #expect(mailbox.withdraw(withdrawn, because: CancellationError()))
        await #expect(throws: CancellationError.self) { try await withdrawn.wait() }
        mailbox.deliver(message(0, tag: 1, "kept"))
        #expect(try mailbox.peek(MessagePattern(context: 2, source: 0, tag: 1)).map(text) == "kept")
    }

    @Test func aProbeSeesAMessageAndLeavesIt() async throws {
        let mailbox = Mailbox()
        async let probed = mailbox.probe(MessagePattern(context: 2, source: 3, tag: nil))
        try await Task.sleep(for: .milliseconds(20))
        mailbox.deliver(message(3, tag: 9, "probed"))
        #expect(try await probed.tag == 9)
        #expect(text(try await mailbox.post(MessagePattern(context: 2, source: 3, tag: 9)).wait()) == "probed")
    }
}
