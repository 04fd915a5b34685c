// echo_bench.c — see echo_bench.h.

#define _GNU_SOURCE
#include "echo_bench.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void set_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// ---- load generator -----------------------------------------------------------------------

// Latency histogram: 0.1 us buckets up to 100 ms.
#define BUCKETS 1000000

typedef struct {
    int fd;
    int sent;       // bytes of the current message written
    int received;   // bytes of its echo read
    uint64_t started;
} load_conn;

static double percentile(const uint32_t *histogram, uint64_t total, double fraction) {
    if (total == 0) return 0;
    uint64_t rank = (uint64_t)(fraction * (double)(total - 1)) + 1, seen = 0;
    for (int i = 0; i < BUCKETS; i++) {
        seen += histogram[i];
        if (seen >= rank) return (i + 0.5) / 10.0;
    }
    return BUCKETS / 10.0;
}

fleet_echo_load_result fleet_echo_load(int port, int connections, int size, int warmup_ms, int duration_ms) {
    fleet_echo_load_result result = {0, 0, 0, 0, 0};
    uint32_t *histogram = calloc(BUCKETS, sizeof(uint32_t));
    load_conn *conns = calloc((size_t)connections, sizeof(load_conn));
    char *message = malloc((size_t)size), *buffer = malloc(65536);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    memset(message, 'x', (size_t)size);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int opened = 0;
    for (; opened < connections; opened++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
            result.error = errno;
            if (fd >= 0) close(fd);
            goto done;
        }
        set_nodelay(fd);
        int on = 1;
        ioctl(fd, FIONBIO, &on);
        conns[opened].fd = fd;
        struct epoll_event event = {.events = EPOLLIN, .data.u32 = (uint32_t)opened};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
    }
    uint64_t start = now_ns();
    uint64_t measure_from = start + (uint64_t)warmup_ms * 1000000ull;
    uint64_t end = measure_from + (uint64_t)duration_ms * 1000000ull;
    uint64_t measured = 0;
    for (int i = 0; i < connections; i++) {
        conns[i].started = now_ns();
        if (send(conns[i].fd, message, (size_t)size, MSG_NOSIGNAL) != size) { result.error = errno ? errno : EIO; goto done; }
        conns[i].sent = size;
    }
    struct epoll_event events[256];
    for (;;) {
        uint64_t now = now_ns();
        if (now >= end) break;
        int count = epoll_wait(epfd, events, 256, 100);
        if (count < 0) {
            if (errno == EINTR) continue;
            result.error = errno;
            goto done;
        }
        for (int e = 0; e < count; e++) {
            load_conn *conn = &conns[events[e].data.u32];
            ssize_t n = recv(conn->fd, buffer, 65536, 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
            if (n <= 0) { result.error = n == 0 ? ECONNRESET : errno; goto done; }
            conn->received += (int)n;
            if (conn->received < size) continue;
            uint64_t t = now_ns();
            if (t >= measure_from && t < end) {
                uint64_t bucket = (t - conn->started) / 100;
                histogram[bucket < BUCKETS ? bucket : BUCKETS - 1]++;
                measured++;
            }
            conn->received = 0;
            conn->started = t;
            if (send(conn->fd, message, (size_t)size, MSG_NOSIGNAL) != size) { result.error = errno ? errno : EIO; goto done; }
        }
    }
    result.requests = measured;
    result.seconds = duration_ms / 1000.0;
    result.p50_us = percentile(histogram, measured, 0.50);
    result.p99_us = percentile(histogram, measured, 0.99);
done:
    for (int i = 0; i < opened; i++) close(conns[i].fd);
    close(epfd);
    free(histogram);
    free(conns);
    free(message);
    free(buffer);
    return result;
}

// ---- reference server ---------------------------------------------------------------------

typedef struct {
    int listener;
    int epfd;
    int stopfd;
    pthread_t thread;
} echo_server;

#define MAX_SERVERS 16
static echo_server servers[MAX_SERVERS];
static pthread_mutex_t servers_lock = PTHREAD_MUTEX_INITIALIZER;
static int servers_used[MAX_SERVERS];

static void *serve(void *context) {
    echo_server *server = context;
    struct epoll_event events[256];
    char buffer[65536];
    for (;;) {
        int count = epoll_wait(server->epfd, events, 256, -1);
        if (count < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int e = 0; e < count; e++) {
            int fd = events[e].data.fd;
            if (fd == server->stopfd) goto stop;
            if (fd == server->listener) {
                int connection;
                while ((connection = accept4(server->listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    set_nodelay(connection);
                    struct epoll_event event = {.events = EPOLLIN, .data.fd = connection};
                    epoll_ctl(server->epfd, EPOLL_CTL_ADD, connection, &event);
                }
                continue;
            }
            ssize_t n = recv(fd, buffer, sizeof buffer, 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
            if (n <= 0) {
                close(fd);
                continue;
            }
            // A blocking-style write loop: echo messages are small and the client reads them.
            ssize_t off = 0;
            while (off < n) {
                ssize_t w = send(fd, buffer + off, (size_t)(n - off), MSG_NOSIGNAL);
                if (w > 0) { off += w; continue; }
                if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                close(fd);
                break;
            }
        }
    }
stop:
    return NULL;
}

int fleet_echo_server_start(int *handle) {
    int index = -1;
    pthread_mutex_lock(&servers_lock);
    for (int i = 0; i < MAX_SERVERS; i++) if (!servers_used[i]) { servers_used[i] = 1; index = i; break; }
    pthread_mutex_unlock(&servers_lock);
    if (index < 0) return -EMFILE;
    echo_server *server = &servers[index];
    server->listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(server->listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (bind(server->listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(server->listener, 256) != 0
        || getsockname(server->listener, (struct sockaddr *)&address, &length) != 0) {
        int code = errno;
        close(server->listener);
        servers_used[index] = 0;
        return -code;
    }
    server->epfd = epoll_create1(EPOLL_CLOEXEC);
    server->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = server->listener};
    epoll_ctl(server->epfd, EPOLL_CTL_ADD, server->listener, &event);
    struct epoll_event stop = {.events = EPOLLIN, .data.fd = server->stopfd};
    epoll_ctl(server->epfd, EPOLL_CTL_ADD, server->stopfd, &stop);
    pthread_create(&server->thread, NULL, serve, server);
    *handle = index;
    return ntohs(address.sin_port);
}

void fleet_echo_server_stop(int handle) {
    if (handle < 0 || handle >= MAX_SERVERS || !servers_used[handle]) return;
    echo_server *server = &servers[handle];
    uint64_t one = 1;
    if (write(server->stopfd, &one, sizeof one) < 0) { /* the thread is gone already */ }
    pthread_join(server->thread, NULL);
    // Connections the clients did not close are released with the process; the listener now.
    close(server->listener);
    close(server->epfd);
    close(server->stopfd);
    pthread_mutex_lock(&servers_lock);
    servers_used[handle] = 0;
    pthread_mutex_unlock(&servers_lock);
}
