// CFleetCooperative — the Linux headers FleetCooperative's loop needs that Swift's Glibc module
// does not export: epoll, eventfd and accept4.

#ifndef C_FLEET_COOPERATIVE_H
#define C_FLEET_COOPERATIVE_H

#include <sys/epoll.h>
#include <sys/eventfd.h>

/// accept4(fd, NULL, NULL, flags).
int cfleet_accept4(int fd, int flags);

#endif
