extension UnsafeMutableRawPointer {
    /// Copies `byteCount` bytes from `source`, which must not overlap them: from 8 to 16 bytes
    /// (a number or two: the messages whose latency counts) with two loads and two stores
    /// inline, else with `memcpy`, whose call through the dynamic linker's table costs more
    /// than such a copy.
    ///
    /// ```swift
    /// target.copySmall(from: body.baseAddress!, byteCount: body.count)
    /// ```
    @inline(__always)
    func copySmall(from source: UnsafeRawPointer, byteCount: Int) {
        if byteCount >= 8, byteCount <= 16 {
            let head = source.loadUnaligned(as: UInt64.self)
            let tail = source.loadUnaligned(fromByteOffset: byteCount &- 8, as: UInt64.self)
            storeBytes(of: head, as: UInt64.self)
            storeBytes(of: tail, toByteOffset: byteCount &- 8, as: UInt64.self)
        } else if byteCount > 0 {
            copyMemory(from: source, byteCount: byteCount)
        }
    }
}
