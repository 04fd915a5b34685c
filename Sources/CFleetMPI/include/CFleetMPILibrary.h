// The calls FleetMPI makes into a real MPI library (OpenMPI, MPICH) under the package trait
// `MPI`. MPI's handles (MPI_COMM_WORLD, MPI_DOUBLE, MPI_SUM) are macros or link-time objects
// Swift cannot import, so every call goes through these functions, which take plain integers.
//
// Built without the trait, or where <mpi.h> is absent, every function returns
// FLEET_MPI_UNAVAILABLE and fleet_mpi_library_available() returns 0.

#ifndef CFLEETMPILIBRARY_H
#define CFLEETMPILIBRARY_H

#include <stddef.h>
#include <stdint.h>

/// Returned by every function when FleetMPI was built without an MPI library.
#define FLEET_MPI_UNAVAILABLE (-1000)

/// A tag that matches any (MPI_ANY_TAG), for fleet_mpi_recv_init.
#define FLEET_MPI_ANY_TAG (-1)

/// Element types of reductions (MPI datatypes).
enum {
    FLEET_MPI_DOUBLE = 1, FLEET_MPI_FLOAT, FLEET_MPI_INT64, FLEET_MPI_INT32, FLEET_MPI_INT16, FLEET_MPI_INT8,
    FLEET_MPI_UINT64, FLEET_MPI_UINT32, FLEET_MPI_UINT16, FLEET_MPI_UINT8,
};

/// Reduction operations (MPI_Op).
enum { FLEET_MPI_SUM = 1, FLEET_MPI_PROD, FLEET_MPI_MIN, FLEET_MPI_MAX };

/// 1 when built with an MPI library.
int fleet_mpi_library_available(void);

/// The library's version string (MPI_Get_library_version), or "" without one.
const char *fleet_mpi_library_version(void);

/// MPI_Init_thread asking for MPI_THREAD_SINGLE; stores the rank and size in
/// MPI_COMM_WORLD. Errors return as MPI error codes (MPI_ERRORS_RETURN is set).
///
/// One thread — the rank's event loop thread, which calls this — makes every call into the
/// library; the process's other threads never do. SINGLE, as `MPI_Init` asks for, spares the
/// locking and atomics the library adds above it: OpenMPI 4.1 over shared memory takes about
/// 0.19 us per allreduce of one double under SINGLE and 0.24 us under FUNNELED or SERIALIZED.
int fleet_mpi_init(int *rank, int *size);

/// MPI_Finalize.
int fleet_mpi_finalize(void);

/// The MPI tag of fleet_mpi_baseline_pingpong's messages on MPI_COMM_WORLD; FleetMPI's own
/// messages never use it.
#define FLEET_MPI_BASELINE_TAG 4

/// The library's own ping-pong, the baseline FleetMPI's benchmark measures itself against in
/// the same run: `count` round trips of one MPI_DOUBLE with `peer`, made with MPI_Send and
/// MPI_Recv as a C program makes them, on MPI_COMM_WORLD with FLEET_MPI_BASELINE_TAG. The two
/// ranks call it together, with none of FleetMPI's messages between them in flight; it blocks
/// until the round trips are done. This rank sends first when `first` is 1. Stores the seconds
/// they took.
int fleet_mpi_baseline_pingpong(int peer, int count, int first, double *seconds);

/// MPI_Abort on MPI_COMM_WORLD: ends every rank of the job.
int fleet_mpi_abort(int code);

/// The bytes an MPI_Request takes (requests live in memory the caller provides).
size_t fleet_mpi_request_size(void);

/// MPI_Isend of `count` bytes to `destination` with `tag` on MPI_COMM_WORLD.
int fleet_mpi_isend(const void *buffer, int count, int destination, int tag, void *request);

/// MPI_Test: stores 1 in `done` once the request completed.
int fleet_mpi_test(void *request, int *done);

/// What fleet_mpi_isend_now returns for a send the library has started but not finished: it
/// still reads `buffer` until a test of the request says it is done.
#define FLEET_MPI_PENDING (-1)

/// MPI_Isend as fleet_mpi_isend, then MPI_Test of it: returns 0 when the library is done with
/// `buffer` already (a small message it copied), FLEET_MPI_PENDING when it is not, or the MPI
/// error code of either call. (One value, not a flag stored through a pointer: the caller on
/// the path of every message keeps it in a register.)
int fleet_mpi_isend_now(const void *buffer, int count, int destination, int tag, void *request);

/// MPI_Iprobe for any source and tag: stores 1 in `found` and the message's source, tag and
/// byte count when one is waiting.
int fleet_mpi_iprobe(int *found, int *source, int *tag, int *count);

/// MPI_Probe for a message from `source` with `tag`: waits until one is there and stores its
/// byte count.
int fleet_mpi_probe_from(int source, int tag, int *count);

/// MPI_Recv_init: a persistent receive of up to `count` bytes from `source` with `tag`
/// (FLEET_MPI_ANY_TAG for any) into `buffer`, started by fleet_mpi_start as often as needed (no
/// request is made per message).
int fleet_mpi_recv_init(void *buffer, int count, int source, int tag, void *request);

/// The largest tag the library carries (the attribute MPI_TAG_UB of MPI_COMM_WORLD).
int fleet_mpi_tag_upper_bound(int *bound);

/// MPI_Start of a persistent request.
int fleet_mpi_start(void *request);

/// MPI_Request_free of an inactive persistent request.
int fleet_mpi_request_free(void *request);

/// What fleet_mpi_test_received finds: returned by value, in two registers, so that the caller
/// on the path of every message stores and reloads nothing.
typedef struct {
    /// 0, or the MPI error code of the test.
    int code;
    /// 1 once the receive has completed; then `count` and `tag` hold.
    int done;
    /// The number of bytes received.
    int count;
    /// The message's MPI tag.
    int tag;
} fleet_mpi_test_result;

/// MPI_Test of a receive (started by fleet_mpi_start).
fleet_mpi_test_result fleet_mpi_test_received(void *request);

/// MPI_Cancel of a receive, then MPI_Wait until it is settled: stores 1 in `cancelled` when no
/// message took it; else 0, the number of bytes received in `count` and the tag in `tag`.
int fleet_mpi_cancel_receive(void *request, int *cancelled, int *count, int *tag);

/// MPI_Recv of `count` bytes from `source` with `tag`.
int fleet_mpi_recv(void *buffer, int count, int source, int tag);

/// Returned by fleet_mpi_node_segment when rank 0's ring capacity makes no segment (not a
/// power of two of 4096 bytes or more).
#define FLEET_MPI_RINGS_INVALID (-1001)

/// Returned by fleet_mpi_node_segment when the window did not hold the segment on every rank.
#define FLEET_MPI_RINGS_FAILED (-1002)

/// Collective over MPI_COMM_WORLD: when every rank of the world runs on this node
/// (MPI_Comm_split_type with MPI_COMM_TYPE_SHARED, after a first look at the hosts' names that
/// makes no communicator) and every rank passes `wanted` 1, allocates a window of memory
/// shared by all of them (MPI_Win_allocate_shared, on rank 0), which rank 0 formats as a
/// FleetShm segment (CFleetShm.h) for the world's ranks with rings of `ring_capacity` bytes
/// (its own `ring_capacity`: the others' are not used); stores its address in `base` (the same
/// memory in every rank, at a page boundary). Stores NULL, and allocates nothing, when not.
/// Returns 0, FLEET_MPI_RINGS_INVALID or FLEET_MPI_RINGS_FAILED on every rank alike (or an MPI
/// error code of a call before the window; a rank whose window exists where another's does
/// not aborts the job). The window lives until fleet_mpi_node_segment_free.
int fleet_mpi_node_segment(int wanted, uint64_t ring_capacity, void **base);

/// Collective over the ranks that got a segment from fleet_mpi_node_segment: frees its window
/// (MPI_Win_free). Nothing when there is none. Call before fleet_mpi_finalize.
int fleet_mpi_node_segment_free(void);

/// MPI_Barrier on MPI_COMM_WORLD.
int fleet_mpi_barrier(void);

/// MPI_Allreduce on MPI_COMM_WORLD of `count` elements of `datatype` with `operation`, from
/// `send` into `result`; in place in `result` (MPI_IN_PLACE) when `send` is NULL.
int fleet_mpi_allreduce(const void *send, void *result, int count, int datatype, int operation);

/// The text of an MPI error code.
void fleet_mpi_error_string(int code, char *text, int capacity);

#endif
