// CFleetCooperative — the Linux headers FleetCooperative's loop needs that Swift's Glibc module
// does not export: epoll, eventfd, accept4, thread names, and the running Swift task.

#ifndef C_FLEET_COOPERATIVE_H
#define C_FLEET_COOPERATIVE_H

#include <sys/epoll.h>
#include <sys/eventfd.h>

/// accept4(fd, NULL, NULL, flags).
int cfleet_accept4(int fd, int flags);

/// Names the calling thread (pthread_setname_np, at most 15 characters).
void cfleet_set_thread_name(const char *name);

/// The Swift task running on this thread (the runtime's `swift_task_getCurrent`, which Swift's
/// `withUnsafeCurrentTask` calls too), or NULL: an identity to compare, never to dereference.
const void *cfleet_current_task(void);

#endif
