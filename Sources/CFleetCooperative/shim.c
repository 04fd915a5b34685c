// accept4 is a GNU extension: declared only with _GNU_SOURCE, which Swift's Glibc module lacks.
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <sys/socket.h>
#include "CFleetCooperative.h"

int cfleet_accept4(int fd, int flags) {
    return accept4(fd, NULL, NULL, flags);
}

void cfleet_set_thread_name(const char *name) {
    pthread_setname_np(pthread_self(), name);
}

// Declared by the Swift runtime (swift/Runtime/Concurrency.h), exported by libswift_Concurrency.
extern void *swift_task_getCurrent(void) __attribute__((swiftcall));

const void *cfleet_current_task(void) {
    return swift_task_getCurrent();
}
