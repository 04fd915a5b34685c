#!/usr/bin/env python3
"""Python side of `Peers/run wire`: serialization speed for the shapes FleetWire benchmarks.

Prints one line per metric, tab separated, the same format as `fleet bench wire`:

    <metric>\t<value>\t<unit>

Shapes (mirroring Benchmarks/FleetWireBenchmarks/FleetWireBenchmarks.swift):
  * a ~1 KiB record (dict) through pickle (protocol 5) and json      -> ops/s
  * 1,000,000 doubles through pickle as list, array('d') and numpy,
    and through json as a list                                         -> MB/s
MB/s counts payload bytes (8 bytes per double, 8,000,000 per call) in units of 10^6,
whatever size the encoded form has, so every column divides the same number.

Runs on a stock python3 (3.10+); numpy rows are skipped when numpy is missing.
"""

import argparse
import json
import pickle
import statistics
import sys
import time
from array import array
from peerlib import emit

PROTOCOL = 5
DOUBLES = 1_000_000
DOUBLES_PAYLOAD_BYTES = DOUBLES * 8


def make_record():
    """The same record as `Record.sample` in FleetWireBenchmarks.swift."""
    return {
        "id": 9_007_199_254_740_993,
        "sequence": 4_000_000_001,
        "timestamp": 1_767_225_600.123456,
        "temperature": -17.625,
        "ratio": 0.3125,
        "flags": 0b1010_0101,
        "active": True,
        "host": "worker-017.rack-04.fleet.local",
        "payload": ("The quick brown fox jumps over the lazy dog. " * 5)[:200],
        "tags": ["tag-%d-%s" % (i, "x" * 10) for i in range(8)],
        "samples": [((i * 104_729 - 1_000_000 + 2**31) % 2**32) - 2**31 for i in range(40)],
        "readings": [i * 1.000_001 + 0.5 for i in range(32)],
        "note": "calibrated against reference unit 7 on the morning shift; drift within tolerance",
        "position": {"latitude": 59.329_323_5, "longitude": 18.068_580_8, "altitude": 28.5},
        "status": {"failed": {"code": 503, "message": "upstream sensor bus timed out"}},
    }


def seconds_per_call(fn, min_time, repeat):
    """Median seconds per call of `fn`, over `repeat` batches of at least `min_time` each."""
    number = 1
    while True:  # calibrate the batch size, as timeit.autorange does
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            break
        number = max(number * 2, int(number * min_time / max(elapsed, 1e-9) * 1.1))
    samples = [elapsed / number]
    for _ in range(repeat - 1):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)




def ops(metric, fn, args):
    emit(metric, 1.0 / seconds_per_call(fn, args.min_time, args.repeat), "ops/s")


def megabytes(metric, fn, args):
    emit(metric, DOUBLES_PAYLOAD_BYTES / 1e6 / seconds_per_call(fn, args.min_time, args.repeat), "MB/s")


def bench_record(args):
    record = make_record()
    pickled = pickle.dumps(record, protocol=PROTOCOL)
    encoded = json.dumps(record)
    assert pickle.loads(pickled) == record and json.loads(encoded) == record
    emit("record_bytes_pickle", len(pickled), "bytes")
    emit("record_bytes_json", len(encoded.encode()), "bytes")
    ops("encode_record_pickle", lambda: pickle.dumps(record, protocol=PROTOCOL), args)
    ops("decode_record_pickle", lambda: pickle.loads(pickled), args)
    ops("encode_record_json", lambda: json.dumps(record), args)
    ops("decode_record_json", lambda: json.loads(encoded), args)


def bench_doubles(args):
    values = [i * 0.5 + 0.25 for i in range(DOUBLES)]  # same values as the Swift suite

    as_list = pickle.dumps(values, protocol=PROTOCOL)
    megabytes("encode_doubles_1m_pickle_list", lambda: pickle.dumps(values, protocol=PROTOCOL), args)
    megabytes("decode_doubles_1m_pickle_list", lambda: pickle.loads(as_list), args)

    packed = array("d", values)
    as_array = pickle.dumps(packed, protocol=PROTOCOL)
    megabytes("encode_doubles_1m_pickle_array", lambda: pickle.dumps(packed, protocol=PROTOCOL), args)
    megabytes("decode_doubles_1m_pickle_array", lambda: pickle.loads(as_array), args)

    try:
        import numpy
    except ImportError:
        print("# numpy not installed: pickle_numpy rows skipped", file=sys.stderr)
    else:
        ndarray = numpy.array(values, dtype=numpy.float64)
        as_numpy = pickle.dumps(ndarray, protocol=PROTOCOL)
        megabytes("encode_doubles_1m_pickle_numpy", lambda: pickle.dumps(ndarray, protocol=PROTOCOL), args)
        megabytes("decode_doubles_1m_pickle_numpy", lambda: pickle.loads(as_numpy), args)

    if not args.no_json_bulk:
        as_json = json.dumps(values)
        megabytes("encode_doubles_1m_json", lambda: json.dumps(values), args)
        megabytes("decode_doubles_1m_json", lambda: json.loads(as_json), args)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per timed batch (default 0.2)")
    parser.add_argument("--repeat", type=int, default=5, help="timed batches per metric; median reported (default 5)")
    parser.add_argument("--quick", action="store_true", help="one short batch per metric (smoke test)")
    parser.add_argument("--no-json-bulk", action="store_true", help="skip json of the 1M doubles (slowest rows)")
    args = parser.parse_args()
    if args.quick:
        args.min_time, args.repeat = 0.01, 1
    bench_record(args)
    bench_doubles(args)


if __name__ == "__main__":
    main()
