// waste_time.h — the seed's CPU-expensive C function ("Writing (and indicating)
// threadsafe C extensions"), ported so that Swift can call it from many threads.
//
// The seed's Python wrapper had to bracket the call like this to let other
// Python threads run while the C loop spins:
//
//     PyObject * waste_time_fn(PyObject * self, PyObject * args) {
//         Py_BEGIN_ALLOW_THREADS
//         waste_time();
//         Py_END_ALLOW_THREADS
//     }
//
// Without Py_BEGIN_ALLOW_THREADS / Py_END_ALLOW_THREADS the call holds the GIL
// and every other Python thread waits for it to finish.
//
// Swift has no GIL: a Swift thread that calls fleet_waste_time() holds no global
// lock, so N threads calling it run on N cores at once. Nothing needs to be
// wrapped. (What Swift does have is a *cooperative* thread pool for async tasks;
// a long blocking call made from inside that pool ties up one of its few threads.
// See FleetExamples/WasteTime.swift for that demonstration and its fix.)
//
// The function is threadsafe for the same reason the seed gives: it touches only
// local variables.

#ifndef FLEET_WASTE_TIME_H
#define FLEET_WASTE_TIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Runs the seed's busy loop for `iterations` iterations:
///
///     for (i = 0; i < iterations; i++) { if ((i % 2) == 0) n++; }
///
/// and returns `n`, the number of even `i` in `0 ..< iterations`, i.e.
/// `(iterations + 1) / 2`. The loop really runs on every call (an optimizer
/// barrier keeps the compiler from replacing it with the closed form), so the
/// time it takes is proportional to `iterations`. The seed used 1024*1024*1024.
///
/// Threadsafe: uses only local variables. Blocks the calling thread until done.
uint64_t fleet_waste_time(uint64_t iterations);

#ifdef __cplusplus
}
#endif

#endif /* FLEET_WASTE_TIME_H */
