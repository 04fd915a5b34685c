#!/usr/bin/env python3
"""Python side of `Peers/run jobs`: Parallel Python (pp) job servers, local and through a node.

Prints one line per metric, tab separated, the same format as `fleet bench jobs`:

    <metric>\t<value>\t<unit>

Metrics:
  sum_primes_1_worker           s       the seed's program: 8 sum_primes jobs (inputs 100000,
  sum_primes_2_workers          s       100100, ..., 100700) through pp.Server(ncpus=K), from the
                                        first submit to the last result; best of 3 runs
  sum_primes_speedup_2_workers  x       sum_primes_1_worker / sum_primes_2_workers
  jobs_trivial_local            jobs/s  5,000 trivial jobs (identity) through pp.Server(ncpus=2):
                                        all submitted, then all results collected
  jobs_trivial_node             jobs/s  2,000 trivial jobs through one ppserver node on 127.0.0.1
                                        (`ppserver -w 2`, a child process) from
                                        pp.Server(ncpus=0, ppservers=("127.0.0.1:PORT",))

pp's local workers are processes (ppworker), one per ncpus; each server is started (and its
workers spawned) before the timing, and the trivial runs send a few untimed warm-up jobs first,
as `fleet bench jobs` does. The node row is omitted, with a note on stderr, when ppserver cannot
be started or reached. Every phase is bounded in count and in time, under one global deadline;
the ppserver child is killed (by PID) on exit, and exits by itself when no client has been
connected for a while (its -t option).
"""

import argparse
import atexit
import importlib.util
import logging
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from peerlib import emit, isprime

try:
    import pp
except ImportError:  # the py3 fork, installed by Peers/run when pp is not
    import ppft as pp

LOOPBACK = "127.0.0.1"
SEED_INPUTS = tuple(range(100_000, 100_800, 100))  # 100000, 100100, ..., 100700
SEED_FIRST_SUM = 454_396_537  # sum of the primes below 100000
WARMUP_JOBS = 20
NODE_WORKERS = 2
NODE_START_TIMEOUT = 30.0  # seconds for ppserver to accept connections and the client to attach
NODE_IDLE_EXIT = 60  # ppserver -t: it exits by itself after this long without a client
SOCKET_TIMEOUT = 120  # pp socket timeout (client and node); also pp's remote job time limit
PP_LOG_LEVEL = logging.ERROR  # pp logs connection and worker chatter below this


# ---------------------------------------------------------------------------------------------
# The seed's program (its pp example): naive trial division, as in rpc_peer.py
# ---------------------------------------------------------------------------------------------



def sum_primes(n):
    """The sum of all primes below n."""
    return sum([x for x in range(2, n) if isprime(x)])


def identity(x):
    """The trivial job."""
    return x


# ---------------------------------------------------------------------------------------------
# Bounds: one global deadline, each phase run in a thread joined with a timeout
# ---------------------------------------------------------------------------------------------

class PhaseTimeout(Exception):
    pass


DEADLINE = [0.0]  # time.monotonic() value after which nothing new starts


def time_left():
    return DEADLINE[0] - time.monotonic()


def bounded(label, seconds, fn):
    """fn() in a daemon thread, waited for at most `seconds` (and the global deadline)."""
    limit = min(seconds, time_left())
    if limit <= 0:
        raise PhaseTimeout("%s: global deadline reached before it started" % label)
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller below
            box["error"] = e

    thread = threading.Thread(target=target, name=label, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        raise PhaseTimeout("%s: not done within %.0f s" % (label, limit))
    if "error" in box:
        raise box["error"]
    return box["value"]


def start_watchdog(seconds):
    """Last resort: past the deadline (plus grace), kill the children and exit at once."""
    def fire():
        print("# jobs_peer: global deadline of %.0f s passed; exiting" % seconds, file=sys.stderr, flush=True)
        kill_children()
        os._exit(124)
    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def new_server(**kwargs):
    """A pp.Server with pp's own logging kept to errors."""
    return pp.Server(loglevel=PP_LOG_LEVEL, socket_timeout=SOCKET_TIMEOUT, **kwargs)


def destroy(server):
    try:
        server.destroy()  # kills its local ppworkers, closes node connections, fails queued jobs
    except Exception as e:
        print("# jobs_peer: pp.Server.destroy failed: %r" % (e,), file=sys.stderr)




# ---------------------------------------------------------------------------------------------
# The ppserver child: found, started on a free loopback port, always killed
# ---------------------------------------------------------------------------------------------

CHILDREN = []


def kill_children():
    """SIGTERM each child (ppserver then stops its workers), SIGKILL what is left of its group."""
    while CHILDREN:
        proc = CHILDREN.pop()
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout=5)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        # The child leads its own session (start_new_session): its ppworkers share its group id.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            print("# jobs_peer: child %d did not exit" % proc.pid, file=sys.stderr)


def ppserver_command():
    """The command that runs ppserver for this interpreter's pp, or None."""
    # Module forms first: they run with this interpreter, hence this pp.
    #   pp 1.7.x: pp.cli (the `ppserver` console script); ppft: ppft.server / pp.server.
    for module in ("pp.cli", "ppft.server", "pp.server"):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if found:
            return [sys.executable, "-m", module]
    # Scripts on PATH: pp 1.6.x installs ppserver.py, later versions ppserver.
    for name in ("ppserver.py", "ppserver"):
        path = shutil.which(name)
        if path:
            return [path]
    return None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def start_node(secret):
    """Start ppserver on 127.0.0.1:PORT with NODE_WORKERS workers; returns the port.

    Raises RuntimeError (with ppserver's stderr tail) if it exits or does not accept
    connections within NODE_START_TIMEOUT.
    """
    command = ppserver_command()
    if command is None:
        raise RuntimeError("no ppserver found (no pp.cli/ppft.server module, no ppserver(.py) on PATH)")
    port = free_port()
    # -i interface, -p port, -w workers, -s secret, -t exit when idle that long, -k socket timeout.
    args = command + ["-i", LOOPBACK, "-p", str(port), "-w", str(NODE_WORKERS), "-s", secret,
                      "-t", str(NODE_IDLE_EXIT), "-k", str(SOCKET_TIMEOUT)]
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=errors, start_new_session=True)
    CHILDREN.append(proc)

    def stderr_tail():
        errors.seek(0)
        lines = errors.read().decode(errors="replace").strip().splitlines()
        return ("; ppserver stderr: " + " | ".join(lines[-5:])) if lines else ""

    deadline = time.monotonic() + min(NODE_START_TIMEOUT, max(time_left(), 0))
    while True:
        if proc.poll() is not None:
            raise RuntimeError("ppserver exited with status %s%s" % (proc.returncode, stderr_tail()))
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1.0):
                return port
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("ppserver did not accept connections on %s:%d%s" % (LOOPBACK, port, stderr_tail()))
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------------------------

def sum_primes_seconds(server):
    """One run of the seed's 8 jobs: seconds from the first submit to the last result."""
    start = time.perf_counter()
    jobs = [server.submit(sum_primes, (n,), (isprime,), ("math",)) for n in SEED_INPUTS]
    sums = [job() for job in jobs]
    elapsed = time.perf_counter() - start
    if sums[0] != SEED_FIRST_SUM or not all(isinstance(s, int) for s in sums):
        raise AssertionError("sum_primes results %r (first should be %d)" % (sums, SEED_FIRST_SUM))
    return elapsed


def bench_sum_primes(args):
    best = {}
    for workers in (1, 2):
        server = new_server(ncpus=workers)
        try:
            times = []
            for _ in range(args.runs):
                times.append(bounded("sum_primes_%d" % workers, args.phase_seconds,
                                     lambda: sum_primes_seconds(server)))
            best[workers] = min(times)
        finally:
            destroy(server)
        emit("sum_primes_%d_worker%s" % (workers, "" if workers == 1 else "s"), best[workers], "s")
    emit("sum_primes_speedup_2_workers", best[1] / best[2], "x")


def trivial_jobs_per_second(server, count):
    """`count` identity jobs, all submitted, then all results collected in order; jobs/s."""
    warmup = [server.submit(identity, (-1 - k,)) for k in range(WARMUP_JOBS)]
    if [job() for job in warmup] != [-1 - k for k in range(WARMUP_JOBS)]:
        raise AssertionError("warm-up jobs returned wrong results")
    start = time.perf_counter()
    jobs = [server.submit(identity, (n,)) for n in range(count)]
    for n, job in enumerate(jobs):
        if job() != n:
            raise AssertionError("trivial job %d returned %r" % (n, job()))
    return count / (time.perf_counter() - start)


def bench_trivial_local(args):
    server = new_server(ncpus=2)
    try:
        rate = bounded("jobs_trivial_local", args.phase_seconds,
                       lambda: trivial_jobs_per_second(server, args.local_jobs))
    finally:
        destroy(server)
    emit("jobs_trivial_local", rate, "jobs/s")


def bench_trivial_node(args):
    secret = secrets.token_hex(16)
    try:
        port = start_node(secret)
    except RuntimeError as e:
        kill_children()
        print("# jobs_peer: ppserver node not started (%s): jobs_trivial_node omitted" % e, file=sys.stderr)
        return
    node = "%s:%d" % (LOOPBACK, port)
    server = new_server(ncpus=0, ppservers=(node,), secret=secret)
    try:
        # pp connects to its ppservers in background threads; wait until the node is attached.
        deadline = time.monotonic() + min(NODE_START_TIMEOUT, max(time_left(), 0))
        while node not in server.get_active_nodes():
            if time.monotonic() > deadline:
                print("# jobs_peer: pp client did not attach to ppserver %s (wrong secret or version?): "
                      "jobs_trivial_node omitted" % node, file=sys.stderr)
                return
            time.sleep(0.02)
        rate = bounded("jobs_trivial_node", args.phase_seconds,
                       lambda: trivial_jobs_per_second(server, args.node_jobs))
        emit("jobs_trivial_node", rate, "jobs/s")
    except PhaseTimeout as e:
        print("# jobs_peer: %s: jobs_trivial_node omitted" % e, file=sys.stderr)
    finally:
        destroy(server)
        kill_children()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test, noisy figures)")
    args = parser.parse_args()

    if args.quick:
        args.runs, args.local_jobs, args.node_jobs = 1, 1_000, 500
        args.phase_seconds, deadline = 60.0, 120.0
    else:
        args.runs, args.local_jobs, args.node_jobs = 3, 5_000, 2_000
        args.phase_seconds, deadline = 120.0, 300.0
    DEADLINE[0] = time.monotonic() + deadline

    logging.getLogger("pp").setLevel(PP_LOG_LEVEL)
    atexit.register(kill_children)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    start_watchdog(deadline + 30.0)
    try:
        bench_sum_primes(args)
        bench_trivial_local(args)
        bench_trivial_node(args)
    except PhaseTimeout as e:
        print("# jobs_peer: %s" % e, file=sys.stderr)
        return 1
    finally:
        kill_children()
    return 0


if __name__ == "__main__":
    sys.exit(main())
