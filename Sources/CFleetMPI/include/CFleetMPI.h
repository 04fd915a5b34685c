// What FleetMPI needs from C that Swift cannot import by itself: glibc's malloc tuning macros,
// the shared-memory rings (CFleetShm.h) whose atomics and futexes want C's control, and the
// calls into a real MPI library under the trait `MPI` (CFleetMPILibrary.h).

#ifndef CFLEETMPI_H
#define CFLEETMPI_H

#include "CFleetShm.h"
#include "CFleetMPILibrary.h"

#if defined(__GLIBC__) || (defined(__linux__) && __has_include(<malloc.h>))
#include <malloc.h>
#endif

/// Keeps large buffers in the heap instead of mapping each one afresh: buffers up to
/// `mmap_threshold` bytes come from the heap, and the heap keeps up to `trim_threshold` bytes of
/// free memory for reuse. Returns 1 when the C library took both settings.
static inline int fleet_mpi_keep_large_buffers(int mmap_threshold, int trim_threshold) {
#if defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
#else
    (void)mmap_threshold;
    (void)trim_threshold;
    return 0;
#endif
}

#endif
