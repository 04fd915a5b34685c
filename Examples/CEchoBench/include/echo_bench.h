// echo_bench.h — the native side of `fleet bench echo`: a load generator and a reference
// single-threaded epoll echo server, in C so that neither is the Swift code under test.

#ifndef FLEET_ECHO_BENCH_H
#define FLEET_ECHO_BENCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// What one load run measured.
typedef struct {
    /// Round trips completed in the measured window.
    uint64_t requests;
    /// Length of the measured window, seconds.
    double seconds;
    /// Median and 99th-percentile round-trip latency, microseconds.
    double p50_us;
    double p99_us;
    /// 0, or the errno of the first failure (connect, send, recv, unexpected close).
    int error;
} fleet_echo_load_result;

/// Opens `connections` TCP connections to 127.0.0.1:`port`; each sends a `size`-byte message,
/// waits for the whole echo, and sends the next (one message in flight per connection). Runs on
/// the calling thread with epoll for `warmup_ms` unmeasured, then `duration_ms` measured.
fleet_echo_load_result fleet_echo_load(int port, int connections, int size, int warmup_ms, int duration_ms);

/// Starts a single-threaded epoll echo server on 127.0.0.1 (port chosen by the system) on a
/// thread of its own. Returns the port, or -errno; `*handle` is passed to fleet_echo_server_stop.
int fleet_echo_server_start(int *handle);

/// Stops the server started with `handle` and closes its sockets.
void fleet_echo_server_stop(int handle);

#ifdef __cplusplus
}
#endif

#endif
