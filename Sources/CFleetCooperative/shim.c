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
