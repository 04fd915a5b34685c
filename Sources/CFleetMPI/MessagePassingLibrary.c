// CFleetMPILibrary.h over the system's MPI library, when FleetMPI is built with the trait `MPI`
// (which defines FLEET_MPI_LIBRARY and links libmpi).

#include "CFleetMPILibrary.h"
#include "CFleetShm.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(FLEET_MPI_LIBRARY) && __has_include(<mpi/mpi.h>)
#include <mpi/mpi.h>
#define HAVE_MPI 1
#elif defined(FLEET_MPI_LIBRARY) && __has_include(<mpi.h>)
#include <mpi.h>
#define HAVE_MPI 1
#endif

#if defined(HAVE_MPI)

static MPI_Datatype datatype_of(int code) {
    switch (code) {
    case FLEET_MPI_DOUBLE: return MPI_DOUBLE;
    case FLEET_MPI_FLOAT: return MPI_FLOAT;
    case FLEET_MPI_INT64: return MPI_INT64_T;
    case FLEET_MPI_INT32: return MPI_INT32_T;
    case FLEET_MPI_INT16: return MPI_INT16_T;
    case FLEET_MPI_INT8: return MPI_INT8_T;
    case FLEET_MPI_UINT64: return MPI_UINT64_T;
    case FLEET_MPI_UINT32: return MPI_UINT32_T;
    case FLEET_MPI_UINT16: return MPI_UINT16_T;
    case FLEET_MPI_UINT8: return MPI_UINT8_T;
    default: return MPI_DATATYPE_NULL;
    }
}

static MPI_Op operation_of(int code) {
    switch (code) {
    case FLEET_MPI_SUM: return MPI_SUM;
    case FLEET_MPI_PROD: return MPI_PROD;
    case FLEET_MPI_MIN: return MPI_MIN;
    case FLEET_MPI_MAX: return MPI_MAX;
    default: return MPI_OP_NULL;
    }
}

int fleet_mpi_library_available(void) { return 1; }

const char *fleet_mpi_library_version(void) {
    static char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    if (MPI_Get_library_version(version, &length) != MPI_SUCCESS) return "";
    char *newline = strchr(version, '\n');
    if (newline) *newline = 0;
    return version;
}

int fleet_mpi_init(int *rank, int *size) {
    int provided = 0;
    int status = MPI_Init_thread(NULL, NULL, MPI_THREAD_SINGLE, &provided);
    if (status != MPI_SUCCESS) return status;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if ((status = MPI_Comm_rank(MPI_COMM_WORLD, rank)) != MPI_SUCCESS) return status;
    return MPI_Comm_size(MPI_COMM_WORLD, size);
}

int fleet_mpi_finalize(void) { return MPI_Finalize(); }

int fleet_mpi_baseline_pingpong(int peer, int count, int first, double *seconds) {
    // MPI_COMM_WORLD with a tag of its own, not a duplicate: a communicator more makes
    // OpenMPI register the progress of its nonblocking collectives (libnbc), which then runs in
    // every later MPI_Test and MPI_Recv of the process, FleetMPI's included.
    const int tag = FLEET_MPI_BASELINE_TAG;
    MPI_Comm communicator = MPI_COMM_WORLD;
    int result;
    double value = 1.5, start = MPI_Wtime();
    for (int i = 0; i < count; i++) {
        if (first) {
            if ((result = MPI_Send(&value, 1, MPI_DOUBLE, peer, tag, communicator)) != MPI_SUCCESS) return result;
            if ((result = MPI_Recv(&value, 1, MPI_DOUBLE, peer, tag, communicator, MPI_STATUS_IGNORE)) != MPI_SUCCESS) return result;
        } else {
            if ((result = MPI_Recv(&value, 1, MPI_DOUBLE, peer, tag, communicator, MPI_STATUS_IGNORE)) != MPI_SUCCESS) return result;
            if ((result = MPI_Send(&value, 1, MPI_DOUBLE, peer, tag, communicator)) != MPI_SUCCESS) return result;
        }
    }
    *seconds = MPI_Wtime() - start;
    return MPI_SUCCESS;
}

int fleet_mpi_abort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }

size_t fleet_mpi_request_size(void) { return sizeof(MPI_Request); }

int fleet_mpi_isend(const void *buffer, int count, int destination, int tag, void *request) {
    return MPI_Isend(buffer, count, MPI_BYTE, destination, tag, MPI_COMM_WORLD, (MPI_Request *)request);
}

int fleet_mpi_test(void *request, int *done) {
    return MPI_Test((MPI_Request *)request, done, MPI_STATUS_IGNORE);
}

int fleet_mpi_isend_now(const void *buffer, int count, int destination, int tag, void *request) {
    int done = 0;
    int result = MPI_Isend(buffer, count, MPI_BYTE, destination, tag, MPI_COMM_WORLD, (MPI_Request *)request);
    if (result != MPI_SUCCESS) return result;
    if ((result = MPI_Test((MPI_Request *)request, &done, MPI_STATUS_IGNORE)) != MPI_SUCCESS) return result;
    return done ? MPI_SUCCESS : FLEET_MPI_PENDING;
}

int fleet_mpi_iprobe(int *found, int *source, int *tag, int *count) {
    MPI_Status status;
    int result = MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, found, &status);
    if (result != MPI_SUCCESS || !*found) return result;
    *source = status.MPI_SOURCE;
    *tag = status.MPI_TAG;
    return MPI_Get_count(&status, MPI_BYTE, count);
}

int fleet_mpi_probe_from(int source, int tag, int *count) {
    MPI_Status status;
    int result = MPI_Probe(source, tag, MPI_COMM_WORLD, &status);
    if (result != MPI_SUCCESS) return result;
    return MPI_Get_count(&status, MPI_BYTE, count);
}

int fleet_mpi_recv_init(void *buffer, int count, int source, int tag, void *request) {
    if (tag == FLEET_MPI_ANY_TAG) tag = MPI_ANY_TAG;
    return MPI_Recv_init(buffer, count, MPI_BYTE, source, tag, MPI_COMM_WORLD, (MPI_Request *)request);
}

int fleet_mpi_tag_upper_bound(int *bound) {
    int *value = NULL, flag = 0;
    int result = MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &value, &flag);
    if (result != MPI_SUCCESS) return result;
    // Every library has the attribute; the standard's least bound where one would not.
    *bound = flag && value ? *value : 32767;
    return MPI_SUCCESS;
}

int fleet_mpi_start(void *request) { return MPI_Start((MPI_Request *)request); }

int fleet_mpi_request_free(void *request) { return MPI_Request_free((MPI_Request *)request); }

fleet_mpi_test_result fleet_mpi_test_received(void *request) {
    MPI_Status status;
    fleet_mpi_test_result result = {0, 0, 0, 0};
    result.code = MPI_Test((MPI_Request *)request, &result.done, &status);
    if (result.code != MPI_SUCCESS || !result.done) return result;
    result.tag = status.MPI_TAG;
#if defined(OPEN_MPI) && defined(OMPI_MAJOR_VERSION) && OMPI_MAJOR_VERSION >= 2 && OMPI_MAJOR_VERSION <= 5
    // OpenMPI (2 to 5) keeps a status's size in bytes: for MPI_BYTE it is MPI_Get_count's answer,
    // without that call's tens of instructions on the path of every message.
    result.count = (int)status._ucount;
#else
    result.code = MPI_Get_count(&status, MPI_BYTE, &result.count);
#endif
    return result;
}

int fleet_mpi_cancel_receive(void *request, int *cancelled, int *count, int *tag) {
    MPI_Status status;
    int result = MPI_Cancel((MPI_Request *)request);
    if (result != MPI_SUCCESS) return result;
    if ((result = MPI_Wait((MPI_Request *)request, &status)) != MPI_SUCCESS) return result;
    if ((result = MPI_Test_cancelled(&status, cancelled)) != MPI_SUCCESS || *cancelled) return result;
    *tag = status.MPI_TAG;
    return MPI_Get_count(&status, MPI_BYTE, count);
}

int fleet_mpi_recv(void *buffer, int count, int source, int tag) {
    return MPI_Recv(buffer, count, MPI_BYTE, source, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

int fleet_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }

/// The window of fleet_mpi_node_segment, and the communicator of the node's ranks it spans;
/// touched only by the thread that calls the library.
static MPI_Comm node_ranks = MPI_COMM_NULL;
static MPI_Win node_window = MPI_WIN_NULL;

/// A hash of the name the library gives this host (MPI_Get_processor_name), below 2^62.
static int64_t host_hash(void) {
    char name[MPI_MAX_PROCESSOR_NAME];
    int length = 0;
    if (MPI_Get_processor_name(name, &length) != MPI_SUCCESS) length = 0;
    uint64_t hash = 14695981039346656037ULL;  // FNV-1a
    for (int i = 0; i < length; i++) hash = (hash ^ (uint8_t)name[i]) * 1099511628211ULL;
    return (int64_t)(hash >> 2);
}

int fleet_mpi_node_segment(int wanted, uint64_t ring_capacity, void **base) {
    *base = NULL;
    if (node_window != MPI_WIN_NULL) return MPI_ERR_OTHER;
    int size = 0, result;
    if ((result = MPI_Comm_size(MPI_COMM_WORLD, &size)) != MPI_SUCCESS) return result;
    // First, with no communicator made: does every rank want the rings, and name the same
    // host? (A job without rings then makes none: OpenMPI runs the progress of nonblocking
    // collectives, libnbc, in every later call that waits once one is made, about 20
    // instructions each.) Every rank decides the same: one that does not want them (another
    // environment) turns them off for all.
    int64_t hash = host_hash(), mine[3] = {wanted ? 1 : 0, hash, -hash}, least[3] = {0, 0, 0};
    if ((result = MPI_Allreduce(mine, least, 3, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD)) != MPI_SUCCESS) return result;
    if (least[0] == 0 || least[1] != -least[2]) return MPI_SUCCESS;
    // The library's own answer: each rank's node holds the whole world.
    MPI_Comm node = MPI_COMM_NULL;
    if ((result = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node)) != MPI_SUCCESS) return result;
    MPI_Comm_set_errhandler(node, MPI_ERRORS_RETURN);
    int node_rank = 0, node_size = 0, local = 0, all = 0;
    // Every rank enters the agreement, a rank whose questions failed saying no.
    if (MPI_Comm_rank(node, &node_rank) == MPI_SUCCESS && MPI_Comm_size(node, &node_size) == MPI_SUCCESS) {
        local = node_size == size ? 1 : 0;
    }
    result = MPI_Allreduce(&local, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (result != MPI_SUCCESS || !all) {
        MPI_Comm_free(&node);
        return result;
    }
    // The window: the node's rank 0 allocates it, a page more than the segment (its memory
    // starts at no particular boundary), lays the segment out at the first page boundary, and
    // tells the others where that is, from the start of the memory: the same bytes in every
    // process, wherever each maps them. Only rank 0's ring capacity counts (the others' sizes
    // are not used): a shape that makes no segment allocates a page, which its format refuses.
    size_t bytes = (fleet_shm_is_valid_shape((uint32_t)size, ring_capacity) ? fleet_shm_segment_size((uint32_t)size, ring_capacity) : 0) + 4096;
    void *mine_memory = NULL, *first = NULL;
    MPI_Win window = MPI_WIN_NULL;
    MPI_Aint first_size = 0;
    int unit = 0;
    result = MPI_Win_allocate_shared(node_rank == 0 ? (MPI_Aint)bytes : 0, 1, MPI_INFO_NULL, node, &mine_memory, &window);
    if (result == MPI_SUCCESS) MPI_Win_set_errhandler(window, MPI_ERRORS_RETURN);
    int usable = result == MPI_SUCCESS &&
        MPI_Win_shared_query(window, 0, &first_size, &unit, &first) == MPI_SUCCESS && first != NULL &&
        (node_rank != 0 || (size_t)first_size >= bytes);
    // {rank 0's fleet_shm_format result (or -1 when its window failed), the segment's offset}
    int64_t layout[2] = {-1, 0};
    if (node_rank == 0 && usable) {
        uintptr_t start = ((uintptr_t)first + 4095) & ~(uintptr_t)4095;
        layout[1] = (int64_t)(start - (uintptr_t)first);
        layout[0] = fleet_shm_format((void *)start, (uint32_t)size, ring_capacity);
    }
    // Every rank takes part in the same calls from here, whatever failed where; what rank 0
    // wrote is there for the others once its broadcast has arrived (full fences around it).
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    int agreed = MPI_Bcast(layout, 2, MPI_INT64_T, 0, node) == MPI_SUCCESS;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint64_t found = 0;
    uint8_t *segment = usable ? (uint8_t *)first + layout[1] : NULL;
    // The segment rank 0 made, whole within its window, on every rank.
    int checked = agreed && usable && layout[0] == 0 && layout[1] >= 0 && layout[1] < 4096 && (size_t)first_size > (size_t)layout[1] &&
        fleet_shm_check(segment, (size_t)first_size - (size_t)layout[1], (uint32_t)size, &found) == 0 ? 1 : 0;
    int had = window != MPI_WIN_NULL ? 1 : 0, outcome[2] = {checked, had}, least_outcome[2] = {0, 0};
    if (MPI_Allreduce(outcome, least_outcome, 2, MPI_INT, MPI_MIN, node) != MPI_SUCCESS) least_outcome[0] = least_outcome[1] = 0;
    if (least_outcome[0]) {
        node_ranks = node;
        node_window = window;
        *base = segment;
        return MPI_SUCCESS;
    }
    // Some rank has no usable segment. A window only some ranks have cannot be freed
    // (MPI_Win_free is collective): such a job cannot go on.
    if (had && !least_outcome[1]) MPI_Abort(MPI_COMM_WORLD, 1);
    if (had) MPI_Win_free(&window);
    MPI_Comm_free(&node);
    return agreed && layout[0] != 0 && layout[0] != -1 ? FLEET_MPI_RINGS_INVALID : FLEET_MPI_RINGS_FAILED;
}

int fleet_mpi_node_segment_free(void) {
    if (node_window == MPI_WIN_NULL) return MPI_SUCCESS;
    int result = MPI_Win_free(&node_window);
    MPI_Comm_free(&node_ranks);
    node_window = MPI_WIN_NULL;
    return result;
}

int fleet_mpi_allreduce(const void *send, void *result, int count, int datatype, int operation) {
    MPI_Datatype type = datatype_of(datatype);
    MPI_Op op = operation_of(operation);
    if (type == MPI_DATATYPE_NULL || op == MPI_OP_NULL) return MPI_ERR_ARG;
    return MPI_Allreduce(send ? send : MPI_IN_PLACE, result, count, type, op, MPI_COMM_WORLD);
}

void fleet_mpi_error_string(int code, char *text, int capacity) {
    char message[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, message, &length) != MPI_SUCCESS) snprintf(message, sizeof message, "MPI error %d", code);
    snprintf(text, (size_t)capacity, "%s", message);
}

#else

int fleet_mpi_library_available(void) { return 0; }
const char *fleet_mpi_library_version(void) { return ""; }
int fleet_mpi_init(int *rank, int *size) { (void)rank; (void)size; return FLEET_MPI_UNAVAILABLE; }
int fleet_mpi_finalize(void) { return FLEET_MPI_UNAVAILABLE; }
int fleet_mpi_baseline_pingpong(int peer, int count, int first, double *seconds) {
    (void)peer; (void)count; (void)first; (void)seconds;
    return FLEET_MPI_UNAVAILABLE;
}
int fleet_mpi_abort(int code) { (void)code; return FLEET_MPI_UNAVAILABLE; }
size_t fleet_mpi_request_size(void) { return 0; }
int fleet_mpi_isend(const void *buffer, int count, int destination, int tag, void *request) {
    (void)buffer; (void)count; (void)destination; (void)tag; (void)request;
    return FLEET_MPI_UNAVAILABLE;
}
int fleet_mpi_test(void *request, int *done) { (void)request; (void)done; return FLEET_MPI_UNAVAILABLE; }
int fleet_mpi_isend_now(const void *buffer, int count, int destination, int tag, void *request) {
    (void)buffer; (void)count; (void)destination; (void)tag; (void)request;
    return FLEET_MPI_UNAVAILABLE;
}
int fleet_mpi_iprobe(int *found, int *source, int *tag, int *count) {
    (void)found; (void)source; (void)tag; (void)count;
    return FLEET_MPI_UNAVAILABLE;
}
int fleet_mpi_probe_from(int source, int tag, int *count) {
    (void)source; (void)tag; (void)count;
    return FLEET_MPI_UNAVAILABLE;
}
int fleet_mpi_recv_init(void *buffer, int count, int source, int tag, void *request) {
    (void)buffer; (void)count; (void)source; (void)tag; (void)request;
    return FLEET_MPI_UNAVAILABLE;
}
int fleet_mpi_start(void *request) { (void)request; return FLEET_MPI_UNAVAILABLE; }
int fleet_mpi_request_free(void *request) { (void)request; return FLEET_MPI_UNAVAILABLE; }
fleet_mpi_test_result fleet_mpi_test_received(void *request) {
    (void)request;
    fleet_mpi_test_result result = {FLEET_MPI_UNAVAILABLE, 0, 0, 0};
    return result;
}
int fleet_mpi_cancel_receive(void *request, int *cancelled, int *count, int *tag) {
    (void)request; (void)cancelled; (void)count; (void)tag;
    return FLEET_MPI_UNAVAILABLE;
}
int fleet_mpi_tag_upper_bound(int *bound) {
    (void)bound;
    return FLEET_MPI_UNAVAILABLE;
}
int fleet_mpi_recv(void *buffer, int count, int source, int tag) {
    (void)buffer; (void)count; (void)source; (void)tag;
    return FLEET_MPI_UNAVAILABLE;
}
int fleet_mpi_barrier(void) { return FLEET_MPI_UNAVAILABLE; }
int fleet_mpi_node_segment(int wanted, uint64_t ring_capacity, void **base) {
    (void)wanted; (void)ring_capacity;
    *base = NULL;
    return FLEET_MPI_UNAVAILABLE;
}
int fleet_mpi_node_segment_free(void) { return FLEET_MPI_UNAVAILABLE; }
int fleet_mpi_allreduce(const void *send, void *result, int count, int datatype, int operation) {
    (void)send; (void)result; (void)count; (void)datatype; (void)operation;
    return FLEET_MPI_UNAVAILABLE;
}
void fleet_mpi_error_string(int code, char *text, int capacity) {
    snprintf(text, (size_t)capacity, "FleetMPI was built without an MPI library (build with --traits MPI), code %d", code);
}

#endif
