/* SPDX-License-Identifier: MIT */
/*
 * Persistent structs: a C struct stored in a region behind a 64-byte header that says what it
 * is, so that a process never reinterprets bytes written under another layout.
 *
 * The header names the type (a hash of the whole name, and its first bytes for messages), the
 * application's version of it, its size and alignment, where the body starts, and a checksum
 * over all of that. Its first word is a state shared by every process: 0 (empty: never
 * formatted), 1 (being formatted) or 2 (ready). A ready struct is opened with no system
 * call. Formatting is done under an exclusive daemon lock (mmapd_lock()) on the 64 header
 * bytes, so of processes racing to format it exactly one does: it sets state 1, zeroes the
 * body, lets the caller's init step fill it, writes the header, publishes it with a release
 * store of 2 and unlocks. The others wait for the lock, up to PSTRUCT_WAIT_MS, and then find
 * it ready. The daemon releases the lock of a process that dies, so whoever gets the lock and
 * still finds state 1 knows the formatter died: it formats again, from the zeroing of the
 * body on. But the daemon also drops the locks of live processes when it restarts without
 * handing its state over, so the formatter records its process id (in the magic word, which
 * it writes last anyway), and a free lock with state 1 means a dead formatter only when that
 * process is gone too (pid_alive()); while it lives, others wait for the state as they would
 * for the lock.
 *
 * The vectors and hash maps of pvec.c and phash.c keep their own header in such a struct, so
 * they are validated the same way.
 */
#include <errno.h>
#include <stddef.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "persist.h"
#include "pidlive.h"
#include "toolbox.h"

#define PSTRUCT_MAGIC 0x5350444du  /* "MDPS" in a little-endian dump */
#define PSTRUCT_FORMAT 1u          /* of the header itself */
#define PSTRUCT_WAIT_MS 2000
#define PSTRUCT_POLL_MS 10
#define PSTRUCT_ALIGN_MAX 4096u

enum { PSTRUCT_EMPTY = 0, PSTRUCT_BUSY = 1, PSTRUCT_READY = 2 };

struct pstruct_header {
	_Atomic uint32_t state;
	union {
		uint32_t magic;                /* state ready */
		_Atomic uint32_t formatter;    /* state busy: the formatting process's id */
	};
	uint32_t format;
	uint32_t checksum;             /* of everything below and magic and format */
	uint64_t name_hash;
	uint32_t version;
	uint32_t size;
	uint32_t align;
	uint32_t body_off;             /* from the header's first byte */
	char name[MMAPD_LAYOUT_NAME_MAX + 1];
};

_Static_assert(sizeof(struct pstruct_header) == MMAPD_PSTRUCT_HEADER,
               "the persistent struct header is 64 bytes");

uint64_t persist_hash(uint64_t hash, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		hash ^= p[i];
		hash *= 0x100000001b3ull;
	}
	return hash;
}

static uint32_t header_sum(const struct pstruct_header *h)
{
	uint64_t x = PERSIST_HASH_INIT;

	x = persist_hash(x, &h->magic, sizeof(h->magic) + sizeof(h->format));
	x = persist_hash(x, &h->name_hash, sizeof(*h) - offsetof(struct pstruct_header, name_hash));
	return (uint32_t)(x ^ (x >> 32));
}

/*
 * Reads the caller's layout into *ret, as far as its struct_size covers (see mmapd-persist.h).
 * Returns 0, or -EINVAL when it is NULL or too short to hold every field up to align, or
 * -E2BIG when a newer caller set a field this library does not know.
 */
static int layout_read(const struct mmapd_layout *layout, struct mmapd_layout *ret)
{
	size_t known = offsetof(struct mmapd_layout, align) + sizeof(layout->align);

	if (!layout || layout->struct_size < known)
		return -EINVAL;
	for (size_t i = sizeof(*ret); i < layout->struct_size; i++)
		if (((const unsigned char *)layout)[i] != 0)
			return -E2BIG;
	memset(ret, 0, sizeof(*ret));
	memcpy(ret, layout, layout->struct_size < sizeof(*ret) ? layout->struct_size : sizeof(*ret));
	ret->struct_size = sizeof(*ret);
	return 0;
}

static bool layout_valid(const struct mmapd_layout *layout)
{
	return layout->type_name && layout->type_name[0] && layout->size > 0 &&
	       layout->align > 0 && layout->align <= PSTRUCT_ALIGN_MAX &&
	       (layout->align & (layout->align - 1)) == 0;
}

/* Where the body starts: after the header, at the struct's alignment. */
static uint32_t body_offset(const struct mmapd_layout *layout)
{
	uint32_t a = layout->align;

	return (MMAPD_PSTRUCT_HEADER + a - 1) / a * a;
}

MMAPD_EXPORT uint64_t mmapd_pstruct_footprint(const struct mmapd_layout *layout)
{
	struct mmapd_layout l;

	if (layout_read(layout, &l) < 0 || !layout_valid(&l))
		return 0;
	return (uint64_t)body_offset(&l) + l.size;
}

/* Checks a ready header against layout. Returns 0, -EBADMSG or -EPROTO (message set). */
static int header_check(const struct mmapd_region *region, uint64_t off,
                        const struct pstruct_header *h, const struct mmapd_layout *layout)
{
	char name[sizeof(h->name)];

	if (h->magic != PSTRUCT_MAGIC || h->format != PSTRUCT_FORMAT ||
	    h->checksum != header_sum(h) || h->name[sizeof(h->name) - 1] != '\0')
		return tbx_error(-EBADMSG, "the persistent struct header at offset %llu of '%s' is "
		                 "corrupt (bad magic, format or checksum)", (unsigned long long)off,
		                 mmapd_region_name(region));
	/* Read once: another process may change the bytes after the check above. */
	memcpy(name, h->name, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	if (h->name_hash != persist_hash(PERSIST_HASH_INIT, layout->type_name,
	                                 strlen(layout->type_name)))
		return tbx_error(-EPROTO, "offset %llu of '%s' holds a '%s' (version %u), not a '%s'",
		                 (unsigned long long)off, mmapd_region_name(region), name, h->version,
		                 layout->type_name);
	if (h->version != layout->version)
		return tbx_error(-EPROTO, "offset %llu of '%s' holds version %u of '%s', not "
		                 "version %u", (unsigned long long)off, mmapd_region_name(region), h->version,
		                 name, layout->version);
	if (h->size != layout->size || h->align != layout->align)
		return tbx_error(-EPROTO, "'%s' version %u at offset %llu of '%s' was stored with "
		                 "size %u and alignment %u; this program's has size %u and "
		                 "alignment %u", name, h->version, (unsigned long long)off,
		                 mmapd_region_name(region), h->size, h->align, layout->size, layout->align);
	if (h->body_off != body_offset(layout))
		return tbx_error(-EBADMSG, "the persistent struct header at offset %llu of '%s' "
		                 "places its body at %u", (unsigned long long)off, mmapd_region_name(region),
		                 h->body_off);
	return 0;
}

static bool header_zero(const struct pstruct_header *h)
{
	const uint8_t *p = (const uint8_t *)h;

	for (size_t i = sizeof(h->state); i < sizeof(*h); i++)
		if (p[i])
			return false;
	return true;
}

/*
 * Formats the header h (claimed: state 1) for layout and publishes it. On failure of init the
 * claim is given up, leaving the header empty again.
 */
static int header_format(struct pstruct_header *h, const struct mmapd_layout *layout,
                         pstruct_init_fn *init, void *ctx)
{
	uint8_t *body = (uint8_t *)h + body_offset(layout);
	size_t n = strlen(layout->type_name);
	int r;

	memset(body, 0, layout->size);
	if (init && (r = init(body, ctx)) < 0) {
		atomic_store(&h->formatter, 0);
		atomic_store_explicit(&h->state, PSTRUCT_EMPTY, memory_order_release);
		return r;
	}
	h->magic = PSTRUCT_MAGIC;
	h->format = PSTRUCT_FORMAT;
	h->name_hash = persist_hash(PERSIST_HASH_INIT, layout->type_name, n);
	h->version = layout->version;
	h->size = layout->size;
	h->align = layout->align;
	h->body_off = body_offset(layout);
	memset(h->name, 0, sizeof(h->name));
	memcpy(h->name, layout->type_name, n < sizeof(h->name) - 1 ? n : sizeof(h->name) - 1);
	h->checksum = header_sum(h);
	atomic_store_explicit(&h->state, PSTRUCT_READY, memory_order_release);
	return 0;
}

static int header_busy(const struct mmapd_region *region, uint64_t off)
{
	return tbx_error(-EAGAIN, "the persistent struct at offset %llu of '%s' is still being "
	                 "formatted by another process", (unsigned long long)off,
	                 mmapd_region_name(region));
}

/*
 * Takes the daemon lock on the header, which the formatter holds while it formats, waiting
 * up to PSTRUCT_WAIT_MS in all. A formatter whose lock a daemon restart dropped still formats
 * while its process lives: then this waits for the state to leave busy (polling every
 * PSTRUCT_POLL_MS) and takes the lock again. Returns 0 (lock held), -EAGAIN (message set) or
 * the errors of mmapd_lock().
 */
static int header_lock(struct mmapd_region *region, uint64_t off, struct pstruct_header *h,
                       uint64_t *ret_lock)
{
	struct timespec start, now, pause = { 0, PSTRUCT_POLL_MS * 1000000L };
	long left = PSTRUCT_WAIT_MS;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		r = mmapd_lock(mmapd_region_client(region), mmapd_region_name(region),
		               mmapd_region_offset(region) + off,
		               MMAPD_PSTRUCT_HEADER, MMAPD_LOCK_EXCLUSIVE, (int)left, ret_lock);
		if (r == -ETIMEDOUT)
			return header_busy(region, off);
		if (r < 0 || atomic_load(&h->state) != PSTRUCT_BUSY ||
		    !pid_alive(atomic_load(&h->formatter)))
			return r;
		mmapd_unlock(mmapd_region_client(region), *ret_lock);
		do {
			clock_gettime(CLOCK_MONOTONIC, &now);
			left = PSTRUCT_WAIT_MS - ((now.tv_sec - start.tv_sec) * 1000L +
			                          (now.tv_nsec - start.tv_nsec) / 1000000L);
			if (left <= 0)
				return header_busy(region, off);
			nanosleep(&pause, NULL);
		} while (atomic_load(&h->state) == PSTRUCT_BUSY &&
		         pid_alive(atomic_load(&h->formatter)));
	}
}

/*
 * With the header lock held, so that nobody else is formatting: formats a header left
 * empty, or left being formatted by a formatter that died, when flags and the mapping
 * allow it.
 */
static int header_format_locked(struct mmapd_region *region, uint64_t off,
                                struct pstruct_header *h, uint32_t state,
                                const struct mmapd_layout *layout, unsigned flags,
                                pstruct_init_fn *init, void *ctx)
{
	if (!(flags & MMAPD_PSTRUCT_INIT))
		return tbx_error(-ENODATA, "no persistent struct at offset %llu of '%s'%s (open "
		                 "with MMAPD_PSTRUCT_INIT to format one)", (unsigned long long)off,
		                 mmapd_region_name(region), state == PSTRUCT_BUSY ?
		                 ": the process formatting it died" : "");
	if (mmapd_region_mode(region) == MMAPD_MODE_RO)
		return tbx_error(-EACCES, "cannot format the persistent struct at offset %llu of "
		                 "'%s': mapped read-only", (unsigned long long)off, mmapd_region_name(region));
	/* Bytes behind an empty state are data of something else. Behind a busy one they are
	 * what a dead formatter left: all of them are written again. */
	if (state == PSTRUCT_EMPTY && !header_zero(h))
		return tbx_error(-EBADMSG, "offset %llu of '%s' holds bytes that are not a "
		                 "persistent struct header; not formatting over them",
		                 (unsigned long long)off, mmapd_region_name(region));
	atomic_store(&h->formatter, (uint32_t)getpid());
	atomic_store(&h->state, PSTRUCT_BUSY);
	return header_format(h, layout, init, ctx);
}

int pstruct_open(struct mmapd_region *region, uint64_t off, const struct mmapd_layout *layout,
                 unsigned flags, pstruct_init_fn *init, void *ctx, void **ret_ptr)
{
	struct pstruct_header *h;
	struct tbx_saved saved;
	uint64_t footprint = mmapd_pstruct_footprint(layout), lock;
	uint32_t align, state;
	int r;

	if (!region || !ret_ptr)
		return tbx_error(-EINVAL, "region or ret_ptr is NULL");
	if (!footprint)
		return tbx_error(-EINVAL, "invalid layout: it needs a type name, a size and an "
		                 "alignment that is a power of two up to %u", PSTRUCT_ALIGN_MAX);
	if (flags & ~MMAPD_PSTRUCT_INIT)
		return tbx_error(-EINVAL, "unknown persistent struct flags 0x%x",
		                 flags & ~MMAPD_PSTRUCT_INIT);
	align = layout->align > 8 ? layout->align : 8;
	if ((mmapd_region_offset(region) + off) % align != 0)
		return tbx_error(-EINVAL, "offset %llu of '%s' (region offset %llu) is not aligned "
		                 "to %u bytes", (unsigned long long)off, mmapd_region_name(region),
		                 (unsigned long long)(mmapd_region_offset(region) + off), align);
	if (footprint > SIZE_MAX)
		return tbx_error(-ERANGE, "a persistent struct of %llu bytes does not fit the "
		                 "address space", (unsigned long long)footprint);
	if (off > UINT64_MAX - footprint || !tbx_region_covers(region, off + footprint))
		return tbx_error(-ERANGE, "%llu+%llu lies outside the accessible bytes of the window "
		                 "of '%s'", (unsigned long long)off, (unsigned long long)footprint,
		                 mmapd_region_name(region));
	h = (struct pstruct_header *)((uint8_t *)mmapd_region_data(region) + off);

	/* A ready struct is opened without the daemon: the state is all it takes. */
	state = atomic_load_explicit(&h->state, memory_order_acquire);
	if (state == PSTRUCT_EMPTY && !(flags & MMAPD_PSTRUCT_INIT))
		return tbx_error(-ENODATA, "no persistent struct at offset %llu of '%s' (open with "
		                 "MMAPD_PSTRUCT_INIT to format one)", (unsigned long long)off,
		                 mmapd_region_name(region));
	if (state == PSTRUCT_EMPTY || state == PSTRUCT_BUSY) {
		/* Whoever formats holds this lock until the state is ready; it dies with them. */
		r = header_lock(region, off, h, &lock);
		if (r < 0)
			return r;
		state = atomic_load_explicit(&h->state, memory_order_acquire);
		r = 0;
		if (state == PSTRUCT_EMPTY || state == PSTRUCT_BUSY)
			r = header_format_locked(region, off, h, state, layout, flags, init, ctx);
		tbx_message_save(&saved);
		mmapd_unlock(mmapd_region_client(region), lock);
		tbx_message_restore(&saved, r);
		if (r < 0)
			return r;
		state = atomic_load_explicit(&h->state, memory_order_acquire);
	}
	/* The body is placed where the checked layout puts it, never where the shared header
	 * says, which may have changed since it was checked. */
	if (state != PSTRUCT_READY)
		return tbx_error(-EBADMSG, "the persistent struct header at offset %llu of '%s' has "
		                 "state %u", (unsigned long long)off, mmapd_region_name(region), state);
	r = header_check(region, off, h, layout);
	if (r == 0)
		*ret_ptr = (uint8_t *)h + body_offset(layout);
	return r;
}

MMAPD_EXPORT int mmapd_pstruct_open(struct mmapd_region *region, uint64_t off,
                                    const struct mmapd_layout *layout, unsigned flags,
                                    void **ret_ptr)
{
	struct mmapd_layout l;
	int r = layout_read(layout, &l);

	if (r == -E2BIG)
		return tbx_error(r, "the layout sets fields this library does not know "
		                 "(struct_size %zu)", layout->struct_size);
	if (r < 0)
		return tbx_error(r, "layout is NULL or its struct_size is not set: make it with "
		                 "MMAPD_LAYOUT()");
	return pstruct_open(region, off, &l, flags, NULL, NULL, ret_ptr);
}
