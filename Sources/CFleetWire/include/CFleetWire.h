// CFleetWire: the GNU extension of glibc that FleetWire needs and Swift's Glibc module
// does not export (it is declared under _GNU_SOURCE).

#ifndef CFLEETWIRE_H
#define CFLEETWIRE_H

/// pipe2(fds, O_CLOEXEC): a pipe whose ends no child inherits; 0, or -1 with errno set.
int cfleetwire_pipe_cloexec(int fds[2]);

#endif
