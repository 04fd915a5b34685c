#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

#include "CFleetWire.h"

int cfleetwire_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}
