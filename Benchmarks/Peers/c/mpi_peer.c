// The C MPI library itself, measured the way `fleet bench mpi` measures FleetMPI: 2 ranks,
// one-way ping-pong of 8 bytes, allreduce of one double, barrier, allreduce of 1M doubles;
// medians over rounds, printed as "metric<TAB>value<TAB>unit" from rank 0.
//
//   mpicc -O2 -o mpi_peer mpi_peer.c && mpirun -n 2 ./mpi_peer [--quick]

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int count) {
    qsort(values, (size_t)count, sizeof *values, compare);
    return values[count / 2];
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != 2) {
        if (rank == 0) fprintf(stderr, "mpi_peer runs on 2 ranks\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int rounds = quick ? 3 : 5, count = quick ? 2000 : 10000, bulk_count = quick ? 5 : 20;
    const int n = 1000000;
    double *bulk = malloc(sizeof(double) * n), *result = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) bulk[i] = 0.25;
    double pingpong[8], allreduce1[8], barrier[8], allreduce_bulk[8], throughput[8];
    int peer = 1 - rank;
    for (int round = 0; round < rounds; round++) {
        double value = 1.5, sum = 0;
        MPI_Barrier(MPI_COMM_WORLD);
        double start = MPI_Wtime();
        for (int i = 0; i < count; i++) {
            if (rank == 0) {
                MPI_Send(&value, 1, MPI_DOUBLE, peer, 0, MPI_COMM_WORLD);
                MPI_Recv(&value, 1, MPI_DOUBLE, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            } else {
                MPI_Recv(&value, 1, MPI_DOUBLE, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Send(&value, 1, MPI_DOUBLE, peer, 0, MPI_COMM_WORLD);
            }
        }
        pingpong[round] = (MPI_Wtime() - start) / (2.0 * count) * 1e6;
        MPI_Barrier(MPI_COMM_WORLD);
        start = MPI_Wtime();
        for (int i = 0; i < count; i++) MPI_Allreduce(&value, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        allreduce1[round] = (MPI_Wtime() - start) / count * 1e6;
        start = MPI_Wtime();
        for (int i = 0; i < count; i++) MPI_Barrier(MPI_COMM_WORLD);
        barrier[round] = (MPI_Wtime() - start) / count * 1e6;
        MPI_Barrier(MPI_COMM_WORLD);
        start = MPI_Wtime();
        for (int i = 0; i < bulk_count; i++) MPI_Allreduce(bulk, result, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        double seconds = (MPI_Wtime() - start) / bulk_count;
        allreduce_bulk[round] = seconds * 1e3;
        throughput[round] = 8e6 / seconds / 1e9;
    }
    if (rank == 0) {
        printf("pingpong_8B_one_way\t%g\tus\n", median(pingpong, rounds));
        printf("allreduce_1_double\t%g\tus\n", median(allreduce1, rounds));
        printf("barrier\t%g\tus\n", median(barrier, rounds));
        printf("allreduce_1M_doubles\t%g\tms\n", median(allreduce_bulk, rounds));
        printf("allreduce_1M_doubles_throughput\t%g\tGB/s\n", median(throughput, rounds));
    }
    free(bulk);
    free(result);
    MPI_Finalize();
    return 0;
}
