import Foundation

/// Times a closure the way the benchmark commands report figures: calibrate a batch that runs for
/// at least `minimumTime`, time `repeats` such batches, and return the median seconds per call.
///
/// - Complexity: runs `body` about `repeats × minimumTime / (seconds per call)` times.
public func medianSecondsPerCall(
    minimumTime: Duration = .milliseconds(200), repeats: Int = 5, _ body: () throws -> Void
) rethrows -> Double {
    let clock = ContinuousClock()
    var batch = 1
    var elapsed = Duration.zero
    while true {
        let start = clock.now
        for _ in 0..<batch { try body() }
        elapsed = clock.now - start
        if elapsed >= minimumTime { break }
        let scale = elapsed > .zero ? (minimumTime / elapsed) * 1.2 : 10
        batch = max(batch * 2, Int(Double(batch) * scale))
    }
    var samples = [elapsed.inSeconds / Double(batch)]
    for _ in 1..<max(repeats, 1) {
        let start = clock.now
        for _ in 0..<batch { try body() }
        samples.append((clock.now - start).inSeconds / Double(batch))
    }
    samples.sort()
    return samples[samples.count / 2]
}

extension Duration {
    /// This duration in seconds.
    var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }

    /// This duration in milliseconds.
    var inMilliseconds: Double { inSeconds * 1000 }
}

/// One measured figure, printed by the `fleet bench` commands as `metric<TAB>value<TAB>unit`.
public struct BenchFigure: Sendable, Equatable, CustomStringConvertible {
    /// What was measured, e.g. `encode_record_binary`.
    public var metric: String
    /// The measured value.
    public var value: Double
    /// The unit, e.g. `ops/s` or `MB/s`.
    public var unit: String

    /// Creates a figure.
    public init(_ metric: String, _ value: Double, _ unit: String) {
        self.metric = metric
        self.value = value
        self.unit = unit
    }

    /// `metric<TAB>value<TAB>unit`, with six significant digits.
    public var description: String {
        "\(metric)\t\(String(format: "%.6g", value))\t\(unit)"
    }
}
