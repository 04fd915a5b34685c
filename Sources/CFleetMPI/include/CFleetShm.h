// Shared memory between the ranks of one host: a segment of single-producer, single-consumer
// byte rings, one per ordered pair of ranks, and a doorbell per rank for parking.
//
// Layout of a segment for R ranks and rings of C bytes (C a power of two):
//   header (64 bytes) | R doorbells (64 bytes each) | R*R rings (128 bytes of control + C bytes)
// The ring from rank f to rank t is number f*R+t (the R rings f->f are never used). Records in a
// ring are 16-byte aligned: a 16-byte header (payload length, flags, the message's total length
// on its first fragment) and the payload. Only the producer moves `tail`, only the consumer
// `head`. A record becomes visible when its flags are stored, last (release/acquire): the
// consumer polls the record's own header, so a small message and its readiness travel in one
// cache line. Before publishing a record the producer clears the flags where the next one will
// go (an end marker), so nothing an earlier lap left there passes for a record.

#ifndef CFLEETSHM_H
#define CFLEETSHM_H

#include <stddef.h>
#include <stdint.h>

/// Record flags.
enum {
    /// The first fragment of a message: `total` is the message's length.
    FLEET_SHM_FIRST = 1,
    /// The last fragment of a message.
    FLEET_SHM_LAST = 2,
    /// The producer said goodbye: nothing more comes from it.
    FLEET_SHM_GOODBYE = 4,
};

/// The largest ring: 1 GiB (a record carries at most a quarter of its ring, and its length is
/// 32 bits).
#define FLEET_SHM_MAX_RING 1073741824ULL

/// The most ranks a segment links.
#define FLEET_SHM_MAX_RANKS 4096u

/// Whether `ranks` rings of `ring_capacity` bytes make a segment: 1 to FLEET_SHM_MAX_RANKS
/// ranks, rings a power of two from 4 KiB to FLEET_SHM_MAX_RING. (Their segment's size then
/// fits 64 bits.)
int fleet_shm_is_valid_shape(uint32_t ranks, uint64_t ring_capacity);

/// The bytes a segment for `ranks` ranks with rings of `ring_capacity` bytes takes.
size_t fleet_shm_segment_size(uint32_t ranks, uint64_t ring_capacity);

/// Creates a segment (an anonymous memory file, inherited by child processes) and writes its
/// header. Returns the file descriptor, or -errno.
int fleet_shm_create(uint32_t ranks, uint64_t ring_capacity);

/// Makes the `fleet_shm_segment_size(ranks, ring_capacity)` bytes at `base` (memory shared
/// some other way: an MPI library's shared window) a segment, whatever they held: zeroes the
/// doorbells and the rings' controls, marks each ring empty, and writes the header. Returns 0, or -EINVAL for a ring capacity that is not a power of two of 4 KiB or more.
int fleet_shm_format(void *base, uint32_t ranks, uint64_t ring_capacity);

/// Maps into this process now every page of the (checked) segment at `base` that `rank` uses —
/// the header, the doorbells, the rings to it (read) and from it (written, where no record is:
/// call before `rank` writes any) — rather than one fault at a time during its first messages.
/// The rings between other ranks, and from `rank` to itself, are left alone.
void fleet_shm_touch(void *base, uint32_t rank);

/// Checks the segment at `base`, within `available` bytes, against `ranks`: returns 0 and
/// stores the ring capacity when its header is one for `ranks` and the whole segment fits;
/// else -EINVAL.
int fleet_shm_check(const void *base, size_t available, uint32_t ranks, uint64_t *ring_capacity);

/// Maps the segment `fd` refers to and checks its header against `ranks`. Returns the base
/// address and stores the ring capacity and the mapped size, or returns NULL and stores errno
/// (EINVAL for a header that does not match) in `error`.
void *fleet_shm_map(int fd, uint32_t ranks, uint64_t *ring_capacity, size_t *mapped_size, int *error);

/// The largest payload one record carries in a ring of `ring_capacity` bytes.
uint64_t fleet_shm_max_record(uint64_t ring_capacity);

/// Writes one record from `from` to `to` carrying as much of `data[0..<length]` as fits now
/// (all of it, or at least 1 KiB, or as much as the ring's free space holds when that is
/// less than 1 KiB but the rest of the message fits). Wakes `to` if it parked.
/// Returns the payload bytes written, or -1 when the ring has no room now.
int64_t fleet_shm_put(void *segment, uint32_t from, uint32_t to, uint32_t flags, uint64_t total,
                      const void *data, uint64_t length);

/// ``fleet_shm_put`` of the bytes of `prefix` followed by those of `data`, as if they were one
/// buffer: a message's header and its body, without copying them together first.
int64_t fleet_shm_put_parts(void *segment, uint32_t from, uint32_t to, uint32_t flags, uint64_t total,
                            const void *prefix, uint64_t prefix_length, const void *data, uint64_t data_length);

/// The next record from `from` to `to`: returns 1 and stores its payload, length, flags and
/// total; 0 when the ring is empty. The record stays until ``fleet_shm_consume``.
int fleet_shm_peek(void *segment, uint32_t from, uint32_t to,
                   const uint8_t **payload, uint32_t *length, uint32_t *flags, uint64_t *total);

/// Releases the record ``fleet_shm_peek`` returned.
void fleet_shm_consume(void *segment, uint32_t from, uint32_t to);

/// Whether the ring from `from` to `to` holds a record (a sequentially consistent read of the
/// next record's header; a record that only says the ring wraps counts).
int fleet_shm_pending(void *segment, uint32_t from, uint32_t to);

/// `rank` is about to sleep: the next producer or consumer that changes one of its rings
/// rings its bell. Sequentially consistent, so that a check of the rings after it sees every
/// record written before the producer looked at the flag.
void fleet_shm_park(void *segment, uint32_t rank);

/// `rank` is awake and polling: nobody needs to ring its bell.
void fleet_shm_unpark(void *segment, uint32_t rank);

/// Rings `rank`'s bell if it parked (and unparks it).
void fleet_shm_notify(void *segment, uint32_t rank);

/// Rings `rank`'s bell whether or not it parked (to stop its waiting thread).
void fleet_shm_ring(void *segment, uint32_t rank);

/// The count of `rank`'s bell.
uint32_t fleet_shm_bell(void *segment, uint32_t rank);

/// Sleeps until `rank`'s bell count differs from `seen`, or `timeout_ms` passes (futex).
void fleet_shm_wait_bell(void *segment, uint32_t rank, uint32_t seen, int timeout_ms);

/// One spin-wait step: the CPU's pause instruction.
void fleet_shm_relax(void);

/// Gives the processor to another thread (sched_yield).
void fleet_shm_yield(void);

#endif
