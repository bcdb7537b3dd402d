/* SPDX-License-Identifier: MIT */
/*
 * Rings over regions: the layout of a ring's region, creating and formatting it, opening
 * and validating it, and the double mapping that makes the ring boundary-free.
 *
 * The region holds one header page (struct ring_header, ring.h) and then capacity bytes of
 * data. The header is reached through an ordinary window of the region (length one page), so
 * the region machinery (grants, reconnection) looks after it. The data is mapped by the
 * ring itself from the region's descriptor: 2 * capacity bytes of address space are reserved
 * PROT_NONE, then the data pages are mapped over both halves with MAP_FIXED | MAP_SHARED.
 * Byte i of the second half is byte i of the first, so a span of up to capacity bytes
 * starting at any offset is contiguous in memory.
 *
 * A new ring's region is created exclusively and its header written with the magic number
 * stored last (release): an opener that sees no magic yet is told to retry (-EAGAIN).
 *
 * A handle opened as MMAPD_RING_WRITER or MMAPD_RING_READER holds an exclusive daemon lock on
 * its side's state word in the header until it closes (ring_wait.c tells a dead side by it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pidlive.h"
#include "ring.h"
#include "toolbox.h"

_Static_assert(sizeof(struct ring_header) <= 4096, "the ring header must fit one page");

#define RING_SIDES (MMAPD_RING_WRITER | MMAPD_RING_READER)
#define RING_CREATE_FLAGS (MMAPD_RING_OVERWRITE | MMAPD_RING_ANONYMOUS | RING_SIDES)

/* Maps the data pages (region offset page .. page + cap) twice, side by side. */
static int ring_map(struct mmapd_ring *ring, int fd, size_t page)
{
	uint8_t *base;
	int r;

	base = mmap(NULL, 2 * ring->cap, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
	            -1, 0);
	if (base == MAP_FAILED)
		goto fail;
	for (int half = 0; half < 2; half++)
		if (mmap(base + (size_t)half * ring->cap, ring->cap, PROT_READ | PROT_WRITE,
		         MAP_SHARED | MAP_FIXED, fd, (off_t)page) == MAP_FAILED) {
			r = -errno;
			munmap(base, 2 * ring->cap);
			errno = -r;
			goto fail;
		}
	ring->data = base;
	return 0;
fail:
	r = -errno;
	return tbx_error(r, "cannot map the %zu data bytes of ring '%s' twice: %s", ring->cap,
	                 mmapd_region_name(ring->region), mmapd_strerror(r));
}

/* Checks the header of an opened ring against its region's size. Returns 0 or -errno. */
static int ring_validate(struct mmapd_ring *ring, size_t page)
{
	struct ring_header *h = ring->hdr;
	const char *name = mmapd_region_name(ring->region);
	uint64_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
	uint64_t size = mmapd_region_size(ring->region);
	/* Each field read once: the values checked are the values used (another process may
	 * write the header meanwhile). */
	uint32_t version = h->version, flags = h->flags;
	uint64_t cap = h->capacity, w, e, r;

	if (magic == 0)
		return tbx_error(-EAGAIN, "ring '%s' is not formatted yet (being created, or its "
		                 "creator died: then delete it)", name);
	if (magic != RING_MAGIC)
		return tbx_error(-EBADMSG, "region '%s' is not a ring (bad magic number)", name);
	if (version < 1 || version > RING_VERSION)
		return tbx_error(-EPROTO, "ring '%s' has layout version %u; this libmmapd knows 1 "
		                 "to %u", name, version, RING_VERSION);
	if (flags & ~(uint32_t)MMAPD_RING_OVERWRITE)
		return tbx_error(-EPROTO, "ring '%s' has unknown flags 0x%x", name, flags);
	if (cap == 0 || cap % page != 0 || cap > MMAPD_RING_CAPACITY_MAX || cap > SIZE_MAX / 2 ||
	    size != page + cap)
		return tbx_error(-EBADMSG, "ring '%s' is corrupt: capacity %llu in a region of %llu "
		                 "bytes (expected one page of %zu plus a multiple of it)", name,
		                 (unsigned long long)cap, (unsigned long long)size, page);
	r = atomic_load(&h->read_pos);
	w = atomic_load(&h->write_pos);
	e = atomic_load(&h->write_end);
	if (r > w || (!(flags & MMAPD_RING_OVERWRITE) && w - r > cap) ||
	    ((flags & MMAPD_RING_OVERWRITE) && (e < w || e - w > cap)))
		return tbx_error(-EBADMSG, "ring '%s' is corrupt: read position %llu, write "
		                 "position %llu, claimed %llu, capacity %llu", name,
		                 (unsigned long long)r, (unsigned long long)w, (unsigned long long)e,
		                 (unsigned long long)cap);
	ring->cap = (size_t)cap;
	ring->mask = (cap & (cap - 1)) == 0 ? cap - 1 : 0;
	ring->flags = flags;
	ring->version = version;
	return 0;
}

/* The header's state word of side (MMAPD_RING_WRITER or MMAPD_RING_READER). */
static _Atomic uint32_t *ring_side_word(struct mmapd_ring *ring, unsigned side)
{
	return side == MMAPD_RING_WRITER ? &ring->hdr->writer : &ring->hdr->reader;
}

/* The header's word with the process id of side's handle. */
static _Atomic uint32_t *ring_side_pid(struct mmapd_ring *ring, unsigned side)
{
	return side == MMAPD_RING_WRITER ? &ring->hdr->writer_pid : &ring->hdr->reader_pid;
}

/*
 * Makes ring the ring's one writer or reader (side): takes the exclusive daemon lock on the
 * side's state word without waiting (-EBUSY: another handle is that side, or a handle whose
 * lock a daemon restart dropped is, its process alive), then records this process and says
 * the side is open.
 */
static int ring_side_attach(struct mmapd_ring *ring, unsigned side)
{
	const char *name = mmapd_region_name(ring->region);
	_Atomic uint32_t *word = ring_side_word(ring, side), *pid = ring_side_pid(ring, side);
	int r = mmapd_lock(ring->client, name,
	                   (uint64_t)((uint8_t *)word - (uint8_t *)ring->hdr), 1,
	                   MMAPD_LOCK_EXCLUSIVE | MMAPD_LOCK_NOWAIT, 0,
	                   &ring->side_lock[side == MMAPD_RING_READER]);

	if (r == -EAGAIN)
		return tbx_error(-EBUSY, "ring '%s' already has a %s", name,
		                 side == MMAPD_RING_WRITER ? "writer" : "reader");
	if (r < 0)
		return r;
	if (atomic_load(word) == RING_SIDE_OPEN && pid_alive(atomic_load(pid))) {
		mmapd_unlock(ring->client, ring->side_lock[side == MMAPD_RING_READER]);
		return tbx_error(-EBUSY, "ring '%s' already has a %s (process %u)", name,
		                 side == MMAPD_RING_WRITER ? "writer" : "reader", atomic_load(pid));
	}
	ring->sides |= side;
	atomic_store(pid, (uint32_t)getpid());
	atomic_store(word, RING_SIDE_OPEN);
	return 0;
}

/* Says side closed, wakes whoever waits on the other side, and drops the side's lock. */
static void ring_side_detach(struct mmapd_ring *ring, unsigned side)
{
	struct ring_header *h = ring->hdr;

	atomic_store(ring_side_word(ring, side), RING_SIDE_CLOSED);
	if (side == MMAPD_RING_WRITER)
		ring_wake(ring, &h->data_seq, &h->read_waiters);
	else
		ring_wake(ring, &h->space_seq, &h->write_waiters);
	mmapd_unlock(ring->client, ring->side_lock[side == MMAPD_RING_READER]);
	ring->sides &= ~side;
}

/* Attaches the sides in flags; on failure none stays attached. */
static int ring_sides_attach(struct mmapd_ring *ring, unsigned flags)
{
	int r;

	for (unsigned side = MMAPD_RING_WRITER; side <= MMAPD_RING_READER; side <<= 1)
		if (flags & side && (r = ring_side_attach(ring, side)) < 0) {
			if (ring->sides)
				ring_side_detach(ring, ring->sides);
			return r;
		}
	return 0;
}

/*
 * Opens region name (with create: creates it for capacity bytes and flags), maps its header
 * page, formats (when creating) and validates it, and maps the data.
 */
static int ring_start(struct mmapd_client *client, const char *name, bool create,
                      size_t capacity, unsigned flags, struct mmapd_ring **ret_ring)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW, .length = page);
	struct tbx_saved saved;
	struct mmapd_ring *ring;
	bool multi;
	int r;

	ring = calloc(1, sizeof(*ring));
	if (!ring)
		return tbx_error(-ENOMEM, "out of memory for ring '%s'", name);
	ring->client = client;
	ring->woke[0] = ring->woke[1] = RING_WOKE_NONE;
	if (create) {
		o.flags = MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL |
		          (flags & MMAPD_RING_ANONYMOUS ? MMAPD_OPEN_ANONYMOUS : 0);
		o.size = (uint64_t)page + capacity;
	}
	r = mmapd_region_open(client, name, &o, &ring->region);
	if (r == -ERANGE)
		r = tbx_error(-EBADMSG, "region '%s' is too small to be a ring", name);
	if (r < 0)
		goto fail;
	ring->hdr = mmapd_region_data(ring->region);
	if (create) {
		ring->hdr->version = RING_VERSION;
		ring->hdr->flags = flags & MMAPD_RING_OVERWRITE;
		ring->hdr->capacity = capacity;
		atomic_store_explicit(&ring->hdr->magic, RING_MAGIC, memory_order_release);
	}
	r = ring_validate(ring, page);
	if (r < 0)
		goto fail;
	r = ring_map(ring, mmapd_region_fd(ring->region), page);
	if (r < 0)
		goto fail;
	ring_barrier_register(ring);
	/* With one CPU the other side cannot publish while this one spins, and reads the bytes
	 * best from this CPU's cache: no spinning, no streaming (ring_io.c). */
	multi = sysconf(_SC_NPROCESSORS_ONLN) > 1;
	ring->spin_ns = multi ? RING_SPIN_MAX_NS : 0;
	ring->streamable = multi && !(ring->flags & MMAPD_RING_OVERWRITE);
	if ((r = ring_sides_attach(ring, flags & RING_SIDES)) < 0) {
		munmap(ring->data, 2 * ring->cap);
		goto fail;
	}
	*ret_ring = ring;
	return 0;
fail:
	tbx_message_save(&saved);
	mmapd_region_close(ring->region);
	if (create && ring->region)
		mmapd_delete(client, name);
	tbx_message_restore(&saved, r);
	free(ring);
	return r;
}

MMAPD_EXPORT int mmapd_ring_create(struct mmapd_client *client, const char *name,
                                   size_t capacity, unsigned flags,
                                   struct mmapd_ring **ret_ring)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	if (!client || !name || !ret_ring)
		return tbx_error(-EINVAL, "client, name or ret_ring is NULL");
	*ret_ring = NULL;
	if (flags & ~RING_CREATE_FLAGS)
		return tbx_error(-EINVAL, "unknown ring flags 0x%x", flags & ~RING_CREATE_FLAGS);
	if (capacity == 0 || capacity > MMAPD_RING_CAPACITY_MAX || capacity > SIZE_MAX / 2)
		return tbx_error(-EINVAL, "ring capacity %zu must be between 1 and %llu bytes",
		                 capacity, (unsigned long long)MMAPD_RING_CAPACITY_MAX);
	/* The double mapping maps whole pages: round up (MMAPD_RING_CAPACITY_MAX is a multiple). */
	capacity = (capacity + page - 1) / page * page;
	return ring_start(client, name, true, capacity, flags, ret_ring);
}

MMAPD_EXPORT int mmapd_ring_open(struct mmapd_client *client, const char *name, unsigned flags,
                                 struct mmapd_ring **ret_ring)
{
	if (!client || !name || !ret_ring)
		return tbx_error(-EINVAL, "client, name or ret_ring is NULL");
	*ret_ring = NULL;
	if (flags & ~RING_SIDES)
		return tbx_error(-EINVAL, "unknown ring open flags 0x%x", flags & ~RING_SIDES);
	return ring_start(client, name, false, 0, flags, ret_ring);
}

MMAPD_EXPORT void mmapd_ring_close(struct mmapd_ring *ring)
{
	if (!ring)
		return;
	ring_flush_pending(ring);
	/* End of stream: the other side drains what it can, then gets -EPIPE. */
	for (unsigned side = MMAPD_RING_WRITER; side <= MMAPD_RING_READER; side <<= 1)
		if (ring->sides & side)
			ring_side_detach(ring, side);
	munmap(ring->data, 2 * ring->cap);
	mmapd_region_close(ring->region);
	free(ring);
}

MMAPD_EXPORT size_t mmapd_ring_capacity(const struct mmapd_ring *ring)
{
	return ring ? ring->cap : 0;
}

MMAPD_EXPORT unsigned mmapd_ring_flags(const struct mmapd_ring *ring)
{
	return ring ? ring->flags : 0;
}

MMAPD_EXPORT struct mmapd_region *mmapd_ring_region(const struct mmapd_ring *ring)
{
	return ring ? ring->region : NULL;
}

MMAPD_EXPORT uint64_t mmapd_ring_lost(const struct mmapd_ring *ring)
{
	return ring ? ring->lost : 0;
}
