import FleetActors
import FleetWire

extension JobNode {
    /// Reaches the node at `endpoint`, checks that it can run `program` (same operating system
    /// and architecture as this process), and ships the program there unless the node has it
    /// cached already (by SHA-256, in ``uploadChunk`` pieces).
    ///
    /// - Throws: ``JobError/nodeIncompatible(_:)`` for a node of another system; the call's
    ///   errors (unreachable, rejected handshake, …) and ``JobNodeError`` for a failed upload.
    static func attach(
        at endpoint: Endpoint, system: FleetActorSystem, shipping program: ShippedProgram
    ) async throws -> (JobNode, JobNodeInfo) {
        let node = try await system.resolve(JobNode.self, named: JobNode.publishedName, at: endpoint)
        let info = try await node.info()
        guard info.operatingSystem == PeerInfo.currentOperatingSystem, info.architecture == PeerInfo.currentArchitecture else {
            throw JobError.nodeIncompatible(
                "node \(endpoint) is \(info.operatingSystem)/\(info.architecture), this program is "
                + "\(PeerInfo.currentOperatingSystem)/\(PeerInfo.currentArchitecture)")
        }
        let digest = try program.digest()
        if try await !node.hasExecutable(digest) {
            let bytes = try program.bytes()
            let uploader = UInt64.random(in: .min ... .max)
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + JobNode.uploadChunk, bytes.count)
                try await node.upload(
                    digest, uploader: uploader, offset: offset, total: bytes.count, bytes: Array(bytes[offset..<end]))
                offset = end
            }
        }
        return (node, info)
    }
}
