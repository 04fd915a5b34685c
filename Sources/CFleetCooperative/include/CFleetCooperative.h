// CFleetCooperative — the Linux headers FleetCooperative's loop needs that Swift's Glibc module
// does not export: epoll, eventfd, accept4 and thread names.

#ifndef C_FLEET_COOPERATIVE_H
#define C_FLEET_COOPERATIVE_H

#include <sys/epoll.h>
#include <sys/eventfd.h>

/// accept4(fd, NULL, NULL, flags).
int cfleet_accept4(int fd, int flags);

/// Names the calling thread (pthread_setname_np, at most 15 characters).
void cfleet_set_thread_name(const char *name);

#endif
