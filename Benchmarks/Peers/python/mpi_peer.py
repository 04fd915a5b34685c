"""mpi4py beside `fleet bench mpi`: the same operations on 2 ranks, run under mpirun.

    mpirun -n 2 --mca btl self,vader python3 mpi_peer.py [--quick]   # shared memory
    mpirun -n 2 --mca btl self,tcp   python3 mpi_peer.py [--quick]   # TCP, as Fleet's transport

Rank 0 prints one figure per line (metric<TAB>value<TAB>unit), medians over rounds, with the
names `fleet bench mpi` uses; `_pickle` variants are mpi4py's lowercase (pickled) methods.
"""

import sys
import time

import numpy as np
from mpi4py import MPI

from peerlib import emit


def main():
    quick = "--quick" in sys.argv
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    if size != 2:
        raise SystemExit("mpi_peer.py runs on 2 ranks")
    rounds = 3 if quick else 5
    count = 2_000 if quick else 10_000
    bulk_count = 5 if quick else 20
    peer = 1 - rank
    small = np.array([1.5])
    buffer = np.empty(1)
    one = np.array([1.5])
    result = np.empty(1)
    bulk = np.full(1_000_000, 0.25)
    bulk_result = np.empty_like(bulk)
    figures = {}

    def record(name, value):
        figures.setdefault(name, []).append(value)

    for _ in range(rounds):
        comm.Barrier()
        start = time.perf_counter()
        for _ in range(count):
            if rank == 0:
                comm.Send(small, dest=peer)
                comm.Recv(buffer, source=peer)
            else:
                comm.Recv(buffer, source=peer)
                comm.Send(buffer, dest=peer)
        record("pingpong_8B_one_way", (time.perf_counter() - start) / (2 * count) * 1e6)

        comm.Barrier()
        start = time.perf_counter()
        for _ in range(count):
            if rank == 0:
                comm.send(1.5, dest=peer)
                comm.recv(source=peer)
            else:
                value = comm.recv(source=peer)
                comm.send(value, dest=peer)
        record("pingpong_pickle_one_way", (time.perf_counter() - start) / (2 * count) * 1e6)

        comm.Barrier()
        start = time.perf_counter()
        for _ in range(count):
            comm.Allreduce(one, result, op=MPI.SUM)
        record("allreduce_1_double", (time.perf_counter() - start) / count * 1e6)

        start = time.perf_counter()
        for _ in range(count):
            comm.allreduce(1.5, op=MPI.SUM)
        record("allreduce_1_double_pickle", (time.perf_counter() - start) / count * 1e6)

        start = time.perf_counter()
        for _ in range(count):
            comm.Barrier()
        record("barrier", (time.perf_counter() - start) / count * 1e6)

        comm.Barrier()
        start = time.perf_counter()
        for _ in range(bulk_count):
            comm.Allreduce(bulk, bulk_result, op=MPI.SUM)
        seconds = (time.perf_counter() - start) / bulk_count
        record("allreduce_1M_doubles", seconds * 1e3)
        record("allreduce_1M_doubles_throughput", 8e6 / seconds / 1e9)

    if rank == 0:
        units = {"allreduce_1M_doubles": "ms", "allreduce_1M_doubles_throughput": "GB/s"}
        for name, values in figures.items():
            values.sort()
            emit(name, values[len(values) // 2], units.get(name, "us"))


if __name__ == "__main__":
    main()
