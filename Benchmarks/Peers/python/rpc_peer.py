#!/usr/bin/env python3
"""Python side of `Peers/run rpc`: rpyc 6 calls between two processes on 127.0.0.1.

Prints one line per metric, tab separated, the same format as `fleet bench rpc`:

    <metric>\t<value>\t<unit>

Metrics (the server is this script run again in a child process, `--serve rpc`):
  rpc_echo_rtt_median, rpc_echo_rtt_p99   us       sync echo(i) of a small int, per call
  rpc_sync_calls                          calls/s  the same loop: calls / total seconds
  rpc_pipelined_calls                     calls/s  1,000 async echo calls outstanding at a time
  rpc_primes_500                          calls/s  get_n_primes(500), the seed's rpyc example
  rpc_doubles_1m_arg                      MB/s     sum(xs) of 131,072 doubles (1 MiB) sent by value;
                                                   MB/s = 1,048,576 * calls / seconds / 10^6
  tcp_rtt_median                          us       raw-socket 64-byte round trip, Python to Python

rpyc runs with its default protocol config (no allow_public_attrs, no pickle) and its default
transport (SocketStream; zlib level 1 on messages over 3,000 bytes, as rpyc does by default).
Every loop is bounded in count and in time; the child server process is killed (by PID) on exit,
and also exits by itself when this process's pipe to it closes.
"""

import argparse
import atexit
import logging
import math
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from peerlib import emit, isprime

LOOPBACK = "127.0.0.1"
TCP_MESSAGE = 64
DOUBLES = 131_072  # 1 MiB of float64
DOUBLES_PAYLOAD_BYTES = DOUBLES * 8
PIPELINE_DEPTH = 1_000
PRIMES_LAST_20 = [3433, 3449, 3457, 3461, 3463, 3467, 3469, 3491, 3499, 3511,
                  3517, 3527, 3529, 3533, 3539, 3541, 3547, 3557, 3559, 3571]
CHILD_START_TIMEOUT = 30.0  # seconds for a child server to report its port
CHILD_MAX_LIFETIME = 900.0  # a child server exits by itself after this long, whatever happens


# ---------------------------------------------------------------------------------------------
# The seed's primestuff: naive trial division (the seed's `isprime`, from its pp example)
# ---------------------------------------------------------------------------------------------



def get_n_primes(n):
    """The first n primes, as a list."""
    primes = []
    candidate = 2
    while len(primes) < n:
        if isprime(candidate):
            primes.append(candidate)
        candidate += 1
    return primes


# ---------------------------------------------------------------------------------------------
# Child servers (`--serve rpc` / `--serve tcp`): print the bound port on stdout, then serve
# ---------------------------------------------------------------------------------------------

def exit_with_parent():
    """Exit when stdin (a pipe from the parent) closes, or after CHILD_MAX_LIFETIME."""
    def watch():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)
    threading.Thread(target=watch, daemon=True).start()
    timer = threading.Timer(CHILD_MAX_LIFETIME, lambda: os._exit(3))
    timer.daemon = True
    timer.start()


def serve_rpc():
    import rpyc
    from rpyc.utils.server import ThreadedServer

    class PeerService(rpyc.Service):
        def exposed_echo(self, x):
            return x

        def exposed_get_n_primes(self, n):
            # By-value result: rpyc's brine sends tuples of immutables by value, but a list would
            # come back as a netref (every later index/len a round trip; `list(netref)` one per
            # element). The Fleet side returns [Int] by value, so the service returns a tuple.
            return tuple(get_n_primes(n))

        def exposed_sum(self, xs):
            return sum(xs)

    logger = logging.getLogger("rpc_peer.server")
    logger.setLevel(logging.WARNING)  # no per-connection info lines; warnings go to stderr
    server = ThreadedServer(PeerService, hostname=LOOPBACK, port=0, logger=logger)
    print(server.port, flush=True)
    server.start()


def recv_exactly(sock, view):
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if n == 0:
            return False
        got += n
    return True


def serve_tcp():
    # The Python raw-socket baseline: blocking sockets, TCP_NODELAY, echo 64-byte messages.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOOPBACK, 0))
    listener.listen(1)
    print(listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    listener.close()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(TCP_MESSAGE)
    view = memoryview(buf)
    while recv_exactly(conn, view):
        conn.sendall(view)
    conn.close()


# ---------------------------------------------------------------------------------------------
# Parent side: child processes, always killed
# ---------------------------------------------------------------------------------------------

CHILDREN = []


def kill_children():
    while CHILDREN:
        proc = CHILDREN.pop()
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            print("# rpc_peer: child %d did not exit" % proc.pid, file=sys.stderr)


def spawn_server(kind):
    """Start `this-script --serve KIND` and return (process, port)."""
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", kind],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    CHILDREN.append(proc)
    deadline = time.monotonic() + CHILD_START_TIMEOUT
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise RuntimeError("%s server did not report its port (exit status %s)" % (kind, proc.poll()))
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 64)
            if not chunk:
                raise RuntimeError("%s server closed its stdout before reporting a port" % kind)
            line += chunk
    return proc, int(line.strip())




def percentile(sorted_samples, p):
    """Nearest-rank percentile of an ascending list."""
    k = max(0, min(len(sorted_samples) - 1, math.ceil(p / 100.0 * len(sorted_samples)) - 1))
    return sorted_samples[k]


def timed_calls(fn, count, seconds):
    """Call fn() until `seconds` have passed or `count` calls are done; (calls, elapsed)."""
    start = now = time.perf_counter()
    calls = 0
    for _ in range(count):
        fn()
        calls += 1
        now = time.perf_counter()
        if now - start >= seconds:
            break
    return calls, now - start


def warn_if_short(metric, done, wanted):
    if done < wanted:
        print("# %s: time limit reached after %d of %d calls" % (metric, done, wanted), file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------------------------

def bench_rpc(args):
    import rpyc

    _, port = spawn_server("rpc")
    # rpyc.connect with its defaults (VoidService on our side, default protocol config).
    conn = rpyc.connect(LOOPBACK, port)
    try:
        # Bind the remote method once. `conn.root.echo(x)` written inline costs two round trips
        # (a getattr that returns a netref to the bound method, then the call, plus an async
        # delete of that netref); one bound netref called N times is one round trip per call,
        # which is what a Fleet actor reference does.
        echo = conn.root.echo
        get_primes = conn.root.get_n_primes
        remote_sum = conn.root.sum

        # --- sync echo: per-call latency and calls/s -----------------------------------------
        for i in range(args.warmup):
            if echo(i) != i:
                raise AssertionError("warm-up echo(%d) returned a different value" % i)
        samples = []
        clock = time.perf_counter_ns
        start = time.perf_counter()
        deadline = start + args.max_seconds
        for i in range(args.calls):
            t0 = clock()
            result = echo(i)
            t1 = clock()
            if result != i:
                raise AssertionError("echo(%d) returned %r" % (i, result))
            samples.append(t1 - t0)
            if time.perf_counter() > deadline:
                break
        total = time.perf_counter() - start
        warn_if_short("rpc_echo", len(samples), args.calls)
        samples.sort()
        emit("rpc_echo_rtt_median", statistics.median(samples) / 1000.0, "us")
        emit("rpc_echo_rtt_p99", percentile(samples, 99) / 1000.0, "us")
        emit("rpc_sync_calls", len(samples) / total, "calls/s")

        # --- pipelined: PIPELINE_DEPTH async calls outstanding, then wait for all ------------
        # rpyc 6 offers async_ (AsyncResult) with the replies served either by the waiting
        # thread itself (AsyncResult.value -> conn.serve) or by a BgServingThread. Serving in
        # the calling thread was slightly faster in our runs (about 2-6%: no hand-off between
        # threads per reply; `--compare-bg` times the other), so that is what the metric uses.
        # Replies arrive in order, so waiting on each result in turn drains the batch.
        async_echo = rpyc.async_(echo)

        def batch(base):
            pending = [async_echo(base + k) for k in range(PIPELINE_DEPTH)]
            for k, res in enumerate(pending):
                res.set_expiry(args.call_timeout)
                if res.value != base + k:
                    raise AssertionError("async echo(%d) returned %r" % (base + k, res.value))

        def run_batches():
            """Warm-up batch, then timed batches (bounded in count and time): (calls, seconds)."""
            batch(0)
            done = 0
            start = time.perf_counter()
            for b in range(args.batches):
                batch((b + 1) * PIPELINE_DEPTH)
                done += PIPELINE_DEPTH
                if time.perf_counter() - start > args.max_seconds:
                    break
            return done, time.perf_counter() - start

        done, total = run_batches()
        warn_if_short("rpc_pipelined", done, args.batches * PIPELINE_DEPTH)
        emit("rpc_pipelined_calls", done / total, "calls/s")

        if args.compare_bg:
            # The alternative: a BgServingThread reads replies; the caller waits on each result.
            from rpyc.utils.helpers import BgServingThread
            bg = BgServingThread(conn)
            try:
                done, total = run_batches()
                print("# rpc_pipelined_calls with BgServingThread: %.6g calls/s" % (done / total),
                      file=sys.stderr)
            finally:
                bg.stop()

        # --- the seed's example: get_n_primes(500) -------------------------------------------
        primes = get_primes(500)
        # The service returns a tuple so rpyc sends the values (not a netref): check it is.
        if type(primes) is not tuple or list(primes[-20:]) != PRIMES_LAST_20:
            raise AssertionError("get_n_primes(500)[-20:] returned %r (%s)"
                                 % (primes[-20:], type(primes).__name__))
        calls, seconds = timed_calls(lambda: get_primes(500), args.primes_calls, args.run_seconds)
        emit("rpc_primes_500", calls / seconds, "calls/s")

        # --- 1 MiB of doubles as an argument ------------------------------------------------
        # By value: rpyc's brine serializes tuples of floats by value (a list would be passed
        # as a netref and the server would pull each element back with a round trip). The
        # tuple is built once, outside the timing, like the Fleet side's [Double].
        xs = tuple(i * 0.5 + 0.25 for i in range(DOUBLES))
        expected = sum(xs)
        got = remote_sum(xs)
        if got != expected:
            raise AssertionError("sum of %d doubles returned %r, expected %r" % (DOUBLES, got, expected))
        calls, seconds = timed_calls(lambda: remote_sum(xs), args.doubles_calls, args.run_seconds)
        emit("rpc_doubles_1m_arg", DOUBLES_PAYLOAD_BYTES * calls / seconds / 1e6, "MB/s")
    finally:
        conn.close()


def bench_tcp(args):
    # The Python raw-socket baseline: 64-byte round trips between two Python processes over
    # blocking sockets with TCP_NODELAY; the echo server is a child process (`--serve tcp`).
    _, port = spawn_server("tcp")
    sock = socket.create_connection((LOOPBACK, port), timeout=args.call_timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        message = bytes(range(TCP_MESSAGE))
        buf = bytearray(TCP_MESSAGE)
        view = memoryview(buf)

        def round_trip():
            sock.sendall(message)
            if not recv_exactly(sock, view):
                raise RuntimeError("tcp echo server closed the connection")

        for _ in range(args.warmup):
            round_trip()
        if buf != message:
            raise AssertionError("tcp echo returned different bytes")
        samples = []
        clock = time.perf_counter_ns
        deadline = time.perf_counter() + args.max_seconds
        for _ in range(args.calls):
            t0 = clock()
            round_trip()
            samples.append(clock() - t0)
            if time.perf_counter() > deadline:
                break
        warn_if_short("tcp_rtt", len(samples), args.calls)
        emit("tcp_rtt_median", statistics.median(samples) / 1000.0, "us")
    finally:
        sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test, noisy figures)")
    parser.add_argument("--compare-bg", action="store_true",
                        help="also time pipelining with a BgServingThread (printed on stderr)")
    parser.add_argument("--serve", choices=("rpc", "tcp"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        exit_with_parent()
        serve_rpc() if args.serve == "rpc" else serve_tcp()
        return

    # Counts bound every loop; max_seconds bounds the echo, pipelined and tcp loops; run_seconds
    # is how long the primes and doubles loops run (within their counts).
    args.call_timeout = 30.0
    if args.quick:
        args.calls, args.warmup, args.batches = 2_000, 200, 3
        args.primes_calls, args.doubles_calls = 20, 5
        args.run_seconds, args.max_seconds = 0.2, 5.0
    else:
        args.calls, args.warmup, args.batches = 20_000, 2_000, 20
        args.primes_calls, args.doubles_calls = 2_000, 500
        args.run_seconds, args.max_seconds = 2.0, 30.0

    atexit.register(kill_children)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    status = 0
    try:
        try:
            import rpyc  # noqa: F401
        except ImportError:
            print("# rpyc not installed (pip install rpyc): rpc rows skipped", file=sys.stderr)
            status = 1
        else:
            bench_rpc(args)
        bench_tcp(args)
    finally:
        kill_children()
    return status


if __name__ == "__main__":
    sys.exit(main())
