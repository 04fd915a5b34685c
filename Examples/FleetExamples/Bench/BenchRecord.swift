/// The ~1 KiB record every serialization benchmark uses — `fleet bench wire`, the
/// package-benchmark suite, and the Python peer (`Benchmarks/Peers/python/wire_peer.py`, which
/// builds the same values as a dict).
public struct BenchRecord: Codable, Equatable, Sendable {
    /// Where the sample was taken.
    public struct Position: Codable, Equatable, Sendable {
        /// Degrees north.
        public var latitude: Double
        /// Degrees east.
        public var longitude: Double
        /// Metres above sea level.
        public var altitude: Double
    }

    /// Health of the sensor; every case but `ok` carries a payload.
    public enum Status: Codable, Equatable, Sendable {
        /// Healthy.
        case ok
        /// Working, with a reason to worry.
        case degraded(reason: String)
        /// Not working.
        case failed(code: Int32, message: String)
    }

    /// A 64-bit identifier.
    public var id: Int64
    /// A sequence number.
    public var sequence: UInt32
    /// Seconds since 1970.
    public var timestamp: Double
    /// Degrees Celsius.
    public var temperature: Double
    /// A ratio.
    public var ratio: Float
    /// Bit flags.
    public var flags: UInt8
    /// Whether the sensor is active.
    public var active: Bool
    /// The host name (~30 characters).
    public var host: String
    /// Free text (~200 characters).
    public var payload: String
    /// Eight short tags.
    public var tags: [String]
    /// 40 integer samples.
    public var samples: [Int32]
    /// 32 readings.
    public var readings: [Double]
    /// An optional note.
    public var note: String?
    /// Where.
    public var position: Position
    /// How the sensor is.
    public var status: Status

    /// The record every benchmark (and the Python peer) uses.
    public static let sample = BenchRecord(
        id: 9_007_199_254_740_993,
        sequence: 4_000_000_001,
        timestamp: 1_767_225_600.123456,
        temperature: -17.625,
        ratio: 0.3125,
        flags: 0b1010_0101,
        active: true,
        host: "worker-017.rack-04.fleet.local",
        payload: String(String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 5).prefix(200)),
        tags: (0..<8).map { "tag-\($0)-\(String(repeating: "x", count: 10))" },
        samples: (0..<40).map { Int32(truncatingIfNeeded: $0 &* 104_729 &- 1_000_000) },
        readings: (0..<32).map { Double($0) * 1.000_001 + 0.5 },
        note: "calibrated against reference unit 7 on the morning shift; drift within tolerance",
        position: Position(latitude: 59.329_323_5, longitude: 18.068_580_8, altitude: 28.5),
        status: .failed(code: 503, message: "upstream sensor bus timed out")
    )

    /// 1,000,000 doubles (8,000,000 bytes of payload), the bulk-array benchmark's input.
    public static let doubles: [Double] = (0..<1_000_000).map { Double($0) * 0.5 + 0.25 }
}
