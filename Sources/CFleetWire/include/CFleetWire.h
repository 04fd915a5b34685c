// CFleetWire: what FleetWire needs of glibc that Swift's Glibc module does not export: a GNU
// extension (declared under _GNU_SOURCE) and epoll, for the busy poll of a loop's sockets.

#ifndef CFLEETWIRE_H
#define CFLEETWIRE_H

#include <sys/epoll.h>

/// pipe2(fds, O_CLOEXEC): a pipe whose ends no child inherits; 0, or -1 with errno set.
int cfleetwire_pipe_cloexec(int fds[2]);

#endif
