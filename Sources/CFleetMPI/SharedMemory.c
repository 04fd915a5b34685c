// The shared-memory rings and doorbells of CFleetShm.h. See the header for the layout.

#define _GNU_SOURCE
#include "CFleetShm.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#else
#include <sys/mman.h>
#endif

#define FLEET_SHM_MAGIC 0x4d48535445454c46ULL  /* "FLEETSHM" */
#define FLEET_SHM_VERSION 2u
#define FLEET_SHM_WRAP 0x100u
/// Set in every published record's flags, last, with release: the consumer polls this word.
#define FLEET_SHM_READY 0x200u
#define HEADER_SIZE 64u
#define DOORBELL_SIZE 64u
#define RING_CONTROL_SIZE 128u
#define RECORD_HEADER 16u
/// The fragment size below which a producer waits for more room instead of writing.
#define MIN_FRAGMENT 1024u

typedef struct {
    uint64_t magic;
    uint32_t version;
    uint32_t ranks;
    uint64_t ring_capacity;
} segment_header;

typedef struct {
    uint32_t parked;
    uint32_t bell;
} doorbell;

typedef struct {
    uint64_t tail;            /* written by the producer */
    uint64_t seen_head;       /* the producer's last look at `head` (its own) */
    uint8_t pad1[48];
    uint64_t head;            /* written by the consumer */
    uint8_t pad2[56];
} ring_control;

typedef struct {
    uint32_t length;
    uint32_t flags;
    uint64_t total;
} record_header;

static inline uint64_t align16(uint64_t n) { return (n + 15u) & ~(uint64_t)15u; }

static inline segment_header *header_of(void *segment) { return (segment_header *)segment; }

static inline doorbell *doorbell_of(void *segment, uint32_t rank) {
    return (doorbell *)((uint8_t *)segment + HEADER_SIZE + (size_t)rank * DOORBELL_SIZE);
}

static inline ring_control *ring_of(void *segment, uint32_t from, uint32_t to) {
    segment_header *h = header_of(segment);
    size_t stride = RING_CONTROL_SIZE + h->ring_capacity;
    size_t index = (size_t)from * h->ranks + to;
    return (ring_control *)((uint8_t *)segment + HEADER_SIZE + (size_t)h->ranks * DOORBELL_SIZE + index * stride);
}

static inline uint8_t *ring_data(ring_control *ring) { return (uint8_t *)ring + RING_CONTROL_SIZE; }

size_t fleet_shm_segment_size(uint32_t ranks, uint64_t ring_capacity) {
    return HEADER_SIZE + (size_t)ranks * DOORBELL_SIZE + (size_t)ranks * ranks * (RING_CONTROL_SIZE + ring_capacity);
}

uint64_t fleet_shm_max_record(uint64_t ring_capacity) {
    uint64_t quarter = ring_capacity / 4;
    return quarter < UINT32_MAX ? quarter : UINT32_MAX;
}

int fleet_shm_is_valid_shape(uint32_t ranks, uint64_t ring_capacity) {
    if (ranks == 0 || ranks > FLEET_SHM_MAX_RANKS) return 0;
    return ring_capacity >= 4096 && ring_capacity <= FLEET_SHM_MAX_RING && (ring_capacity & (ring_capacity - 1)) == 0;
}

/// Writes a segment's header, the magic last (with release).
static void write_header(void *base, uint32_t ranks, uint64_t ring_capacity) {
    segment_header *h = header_of(base);
    h->version = FLEET_SHM_VERSION;
    h->ranks = ranks;
    h->ring_capacity = ring_capacity;
    __atomic_store_n(&h->magic, FLEET_SHM_MAGIC, __ATOMIC_RELEASE);
}

/// Whether `h` is the header of a segment for `ranks` ranks.
static int is_valid_header(const segment_header *h, uint32_t ranks) {
    return __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) == FLEET_SHM_MAGIC && h->version == FLEET_SHM_VERSION &&
           h->ranks == ranks && fleet_shm_is_valid_shape(ranks, h->ring_capacity);
}

int fleet_shm_create(uint32_t ranks, uint64_t ring_capacity) {
#if defined(__linux__)
    if (!fleet_shm_is_valid_shape(ranks, ring_capacity)) return -EINVAL;
    int fd = memfd_create("fleet-mpi", 0);
    if (fd < 0) return -errno;
    size_t size = fleet_shm_segment_size(ranks, ring_capacity);
    if (ftruncate(fd, (off_t)size) != 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    void *base = mmap(NULL, HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        int error = errno;
        close(fd);
        return -error;
    }
    write_header(base, ranks, ring_capacity);
    munmap(base, HEADER_SIZE);
    return fd;
#else
    (void)ranks;
    (void)ring_capacity;
    return -ENOSYS;
#endif
}

int fleet_shm_format(void *base, uint32_t ranks, uint64_t ring_capacity) {
    if (!fleet_shm_is_valid_shape(ranks, ring_capacity)) return -EINVAL;
    // What a fresh memory file holds, where it matters: zero doorbells and ring controls, and
    // an end marker where each ring's first record goes (a producer clears the place of the
    // next record before it publishes one, so the rest of a ring may hold anything).
    memset(base, 0, HEADER_SIZE + (size_t)ranks * DOORBELL_SIZE);
    header_of(base)->ranks = ranks;
    header_of(base)->ring_capacity = ring_capacity;
    for (uint32_t from = 0; from < ranks; from++) {
        for (uint32_t to = 0; to < ranks; to++) memset(ring_of(base, from, to), 0, RING_CONTROL_SIZE + RECORD_HEADER);
    }
    write_header(base, ranks, ring_capacity);
    return 0;
}

/// Reads a byte of every page of `length` bytes from `start`.
static void touch_pages(const uint8_t *start, size_t length) {
    const volatile uint8_t *bytes = (const volatile uint8_t *)start;
    for (size_t offset = 0; offset < length; offset += 4096) (void)bytes[offset];
    if (length > 0) (void)bytes[length - 1];
}

void fleet_shm_touch(void *base, uint32_t rank) {
    const segment_header *h = header_of(base);
    touch_pages((const uint8_t *)base, HEADER_SIZE + (size_t)h->ranks * DOORBELL_SIZE);
    for (uint32_t other = 0; other < h->ranks; other++) {
        if (other == rank) continue;
        ring_control *in = ring_of(base, other, rank), *out = ring_of(base, rank, other);
        touch_pages((const uint8_t *)in, RING_CONTROL_SIZE + h->ring_capacity);
        touch_pages((const uint8_t *)out, RING_CONTROL_SIZE);
        // The rings this rank writes, written: their pages become its to write without a
        // fault. Only bytes no record holds yet (the ring is empty, and its first record's
        // header, which the consumer polls, is left alone): from the page after that header.
        uint8_t *data = ring_data(out);
        uintptr_t first = ((uintptr_t)data + RECORD_HEADER + 4095) & ~(uintptr_t)4095;
        volatile uint8_t *page = (volatile uint8_t *)first;
        for (; (uint8_t *)page < data + h->ring_capacity; page += 4096) *page = 0;
    }
}

int fleet_shm_check(const void *base, size_t available, uint32_t ranks, uint64_t *ring_capacity) {
    const segment_header *h = (const segment_header *)base;
    if (available < HEADER_SIZE || !is_valid_header(h, ranks) || available < fleet_shm_segment_size(ranks, h->ring_capacity)) return -EINVAL;
    *ring_capacity = h->ring_capacity;
    return 0;
}

void *fleet_shm_map(int fd, uint32_t ranks, uint64_t *ring_capacity, size_t *mapped_size, int *error) {
    void *head = mmap(NULL, HEADER_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    if (head == MAP_FAILED) {
        *error = errno;
        return NULL;
    }
    segment_header h = *header_of(head);
    munmap(head, HEADER_SIZE);
    if (!is_valid_header(&h, ranks)) {
        *error = EINVAL;
        return NULL;
    }
    size_t size = fleet_shm_segment_size(ranks, h.ring_capacity);
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        *error = errno;
        return NULL;
    }
    *ring_capacity = h.ring_capacity;
    *mapped_size = size;
    *error = 0;
    return base;
}

int64_t fleet_shm_put(void *segment, uint32_t from, uint32_t to, uint32_t flags, uint64_t total,
                      const void *data, uint64_t length) {
    return fleet_shm_put_parts(segment, from, to, flags, total, NULL, 0, data, length);
}

int64_t fleet_shm_put_parts(void *segment, uint32_t from, uint32_t to, uint32_t flags, uint64_t total,
                            const void *prefix, uint64_t prefix_length, const void *data, uint64_t data_length) {
    uint64_t length = prefix_length + data_length;
    ring_control *ring = ring_of(segment, from, to);
    uint64_t capacity = header_of(segment)->ring_capacity;
    uint64_t tail = ring->tail;  /* only this process writes it */
    uint64_t wanted = length < fleet_shm_max_record(capacity) ? length : fleet_shm_max_record(capacity);
    uint64_t smallest = wanted < MIN_FRAGMENT ? wanted : MIN_FRAGMENT;
    /* The consumer's head, as last seen: its cache line is fetched only when that leaves too
     * little room for this record (and a wrap). */
    uint64_t head = ring->seen_head;
    if (capacity - (tail - head) < 2 * (RECORD_HEADER + align16(wanted)) + RECORD_HEADER) {
        head = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
        ring->seen_head = head;
    }
    /* Every write leaves the header of the next record's place free, for its end marker. */
    uint64_t used = tail - head + RECORD_HEADER;
    uint64_t free_bytes = used < capacity ? capacity - used : 0;
    uint64_t position = tail & (capacity - 1);
    uint64_t contiguous = capacity - position;
    uint64_t room = (contiguous < free_bytes ? contiguous : free_bytes);

    if (room < RECORD_HEADER + align16(smallest) && contiguous < free_bytes &&
        free_bytes - contiguous >= RECORD_HEADER + align16(smallest)) {
        /* Not enough before the end, enough after wrapping: mark the rest of the ring skipped
         * (its end marker, at the start of the ring, first). */
        record_header *start = (record_header *)ring_data(ring);
        __atomic_store_n(&start->flags, 0u, __ATOMIC_RELAXED);
        record_header *wrap = (record_header *)(ring_data(ring) + position);
        wrap->length = 0;
        wrap->total = 0;
        __atomic_store_n(&wrap->flags, FLEET_SHM_WRAP | FLEET_SHM_READY, __ATOMIC_RELEASE);
        tail += contiguous;
        free_bytes -= contiguous;
        position = 0;
        room = free_bytes < capacity ? free_bytes : capacity;
    }
    if (room < RECORD_HEADER + align16(smallest)) {
        if (tail != ring->tail) __atomic_store_n(&ring->tail, tail, __ATOMIC_RELEASE);
        return -1;
    }
    uint64_t payload = room - RECORD_HEADER;
    if (payload > wanted) payload = wanted;
    if (payload < length) payload &= ~(uint64_t)15u;  /* keep fragments aligned */
    uint64_t next = tail + RECORD_HEADER + align16(payload);
    /* The end marker: where the next record goes, a header that is not ready, so that the
     * consumer never takes what an earlier lap left there for a record. */
    record_header *marker = (record_header *)(ring_data(ring) + (next & (capacity - 1)));
    __atomic_store_n(&marker->flags, 0u, __ATOMIC_RELAXED);
    record_header *record = (record_header *)(ring_data(ring) + position);
    record->length = (uint32_t)payload;
    record->total = total;
    uint64_t from_prefix = payload < prefix_length ? payload : prefix_length;
    if (from_prefix > 0) memcpy(record + 1, prefix, from_prefix);
    if (payload > from_prefix) memcpy((uint8_t *)(record + 1) + from_prefix, data, payload - from_prefix);
    /* The caller's flags are FIRST, LAST and GOODBYE; WRAP and READY are the ring's own. */
    uint32_t published = (flags & (payload == length ? ~0u : ~(uint32_t)FLEET_SHM_LAST) & ~(FLEET_SHM_WRAP | FLEET_SHM_READY))
        | FLEET_SHM_READY;
    /* The consumer polls the record itself: one cache line carries a small message and its
     * readiness. `tail` follows, for the producer and for parking. */
    __atomic_store_n(&record->flags, published, __ATOMIC_RELEASE);
    __atomic_store_n(&ring->tail, next, __ATOMIC_RELEASE);
    fleet_shm_notify(segment, to);
    return (int64_t)payload;
}

int fleet_shm_peek(void *segment, uint32_t from, uint32_t to,
                   const uint8_t **payload, uint32_t *length, uint32_t *flags, uint64_t *total) {
    ring_control *ring = ring_of(segment, from, to);
    uint64_t capacity = header_of(segment)->ring_capacity;
    for (;;) {
        uint64_t head = ring->head;  /* only this process writes it */
        uint64_t position = head & (capacity - 1);
        const record_header *record = (const record_header *)(ring_data(ring) + position);
        uint32_t ready = __atomic_load_n(&record->flags, __ATOMIC_ACQUIRE);
        if (!(ready & FLEET_SHM_READY)) return 0;
        if (ready & FLEET_SHM_WRAP) {
            __atomic_store_n(&ring->head, head + (capacity - position), __ATOMIC_RELEASE);
            continue;
        }
        *payload = (const uint8_t *)(record + 1);
        *length = record->length;
        *flags = ready & ~(uint32_t)FLEET_SHM_READY;
        *total = record->total;
        return 1;
    }
}

void fleet_shm_consume(void *segment, uint32_t from, uint32_t to) {
    ring_control *ring = ring_of(segment, from, to);
    uint64_t capacity = header_of(segment)->ring_capacity;
    uint64_t head = ring->head;
    const record_header *record = (const record_header *)(ring_data(ring) + (head & (capacity - 1)));
    __atomic_store_n(&ring->head, head + RECORD_HEADER + align16(record->length), __ATOMIC_RELEASE);
}

int fleet_shm_pending(void *segment, uint32_t from, uint32_t to) {
    ring_control *ring = ring_of(segment, from, to);
    uint64_t capacity = header_of(segment)->ring_capacity;
    const record_header *record = (const record_header *)(ring_data(ring) + (ring->head & (capacity - 1)));
    /* The record's own header, as `peek` reads it: one cache line, not `tail`'s and then the
     * record's. The producer stores it before its fence, so parking stays sound. */
    return (__atomic_load_n(&record->flags, __ATOMIC_SEQ_CST) & FLEET_SHM_READY) != 0;
}

void fleet_shm_park(void *segment, uint32_t rank) {
    __atomic_store_n(&doorbell_of(segment, rank)->parked, 1u, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void fleet_shm_unpark(void *segment, uint32_t rank) {
    doorbell *bell = doorbell_of(segment, rank);
    if (__atomic_load_n(&bell->parked, __ATOMIC_RELAXED)) __atomic_store_n(&bell->parked, 0u, __ATOMIC_RELAXED);
}

static void wake(doorbell *bell) {
    __atomic_add_fetch(&bell->bell, 1u, __ATOMIC_SEQ_CST);
#if defined(__linux__)
    syscall(SYS_futex, &bell->bell, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
#endif
}

void fleet_shm_notify(void *segment, uint32_t rank) {
    doorbell *bell = doorbell_of(segment, rank);
    /* Orders the caller's ring update before the look at the flag (the parker's mirror image). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&bell->parked, __ATOMIC_RELAXED) && __atomic_exchange_n(&bell->parked, 0u, __ATOMIC_SEQ_CST)) {
        wake(bell);
    }
}

void fleet_shm_ring(void *segment, uint32_t rank) {
    wake(doorbell_of(segment, rank));
}

uint32_t fleet_shm_bell(void *segment, uint32_t rank) {
    return __atomic_load_n(&doorbell_of(segment, rank)->bell, __ATOMIC_SEQ_CST);
}

void fleet_shm_wait_bell(void *segment, uint32_t rank, uint32_t seen, int timeout_ms) {
#if defined(__linux__)
    struct timespec timeout = { .tv_sec = timeout_ms / 1000, .tv_nsec = (long)(timeout_ms % 1000) * 1000000L };
    syscall(SYS_futex, &doorbell_of(segment, rank)->bell, FUTEX_WAIT, seen, &timeout, NULL, 0);
#else
    (void)segment; (void)rank; (void)seen;
    usleep((useconds_t)timeout_ms * 1000);
#endif
}

void fleet_shm_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void fleet_shm_yield(void) { sched_yield(); }
