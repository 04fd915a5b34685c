// waste_time.c — see include/waste_time.h.

#include "waste_time.h"

uint64_t fleet_waste_time(uint64_t iterations) {
    uint64_t n = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        if ((i % 2) == 0) n++;
        // Optimizer barrier: tells the compiler that `n` may be read and
        // changed here, so it can neither vectorize the loop away nor replace
        // it with the closed form (iterations + 1) / 2. The loop keeps the
        // seed's cost of one compare-and-branch per iteration.
        // In Python this whole call would have to sit between
        // Py_BEGIN_ALLOW_THREADS and Py_END_ALLOW_THREADS; Swift needs nothing.
        __asm__ volatile("" : "+r"(n));
    }
    return n;
}
