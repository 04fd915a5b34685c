import Foundation

/// The work a ``JobServer`` has done, per node: what pp's `print_stats()` prints.
public struct JobStats: Sendable, Hashable, Codable {
    /// One row per node: `local` for this process's workers, then each remote node.
    public var nodes: [NodeStats]
    /// Time since the server was created.
    public var elapsed: Duration

    /// Creates stats for `nodes` after `elapsed`.
    public init(nodes: [NodeStats], elapsed: Duration) {
        self.nodes = nodes
        self.elapsed = elapsed
    }

    /// Jobs done on every node together.
    public var totalJobs: Int { nodes.reduce(0) { $0 + $1.jobs } }

    /// The table pp's `print_stats()` prints:
    ///
    /// ```
    /// Job execution statistics:
    ///  job count | % of all jobs | job time sum | time per job | job server
    ///          8 |        100.00 |       1.3953 |     0.174413 | local
    /// Time elapsed since server creation 0.7143 s
    /// ```
    public var table: String {
        var lines = ["Job execution statistics:", " job count | % of all jobs | job time sum | time per job | job server"]
        let total = max(totalJobs, 1)
        for node in nodes {
            lines.append(String(
                format: "%10d | %13.2f | %12.4f | %12.6f | ",
                node.jobs, 100 * Double(node.jobs) / Double(total), node.busy.seconds,
                node.averageJobTime.seconds) + node.name)
        }
        lines.append(String(format: "Time elapsed since server creation %.4f s", elapsed.seconds))
        return lines.joined(separator: "\n")
    }
}

/// The work one node (this process's threads, or a remote node) has done.
public struct NodeStats: Sendable, Hashable, Codable {
    /// `local`, or the node's `host:port`.
    public var name: String
    /// Jobs finished there (with a result or an error).
    public var jobs: Int
    /// The sum of the jobs' running times.
    public var busy: Duration

    /// Creates empty stats for `name`.
    public init(name: String, jobs: Int = 0, busy: Duration = .zero) {
        self.name = name
        self.jobs = jobs
        self.busy = busy
    }

    /// The mean running time of a job; zero before the first.
    public var averageJobTime: Duration { jobs == 0 ? .zero : busy / jobs }

    mutating func record(_ elapsed: Duration) {
        jobs += 1
        busy += elapsed
    }
}

extension Duration {
    /// This duration in seconds.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
