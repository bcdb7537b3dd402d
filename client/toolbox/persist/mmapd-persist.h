/* SPDX-License-Identifier: MIT */
/*
 * libmmapd's persistent structures: C structs, fixed-capacity strings, vectors and hash maps
 * kept in a region's bytes. Part of libmmapd (same library, same symbol version), but a
 * toolbox built only on the public API of mmapd.h, which it includes: anything it does, any
 * client could do (client/toolbox/persist/). Conventions (return values, ownership,
 * mmapd_last_message()) are those of mmapd.h.
 */
#ifndef MMAPD_PERSIST_H
#define MMAPD_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "mmapd.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ---- Persistent structures (docs/client-api.md, "Persistent structures") ----
 * C structs, fixed-capacity strings, vectors and hash maps that live in a region's bytes, so
 * that they outlast the process (and, in file regions, the daemon) and every process mapping
 * the region sees the same data. They hold plain bytes only: no pointers (another process maps
 * the region at another address) and the host's byte order (files are not portable between
 * architectures). None is internally synchronised: see each part for what is safe without the
 * lock. Durability is the region's: mmapd_flush() or mmapd_region_msync(), or, for vectors
 * and hash maps, MMAPD_PERSIST_DURABLE.
 *
 * Crash safety: every operation that changes a vector or a hash map is atomic with respect to
 * the death of the process doing it, at any instruction (SIGKILL included): the next process
 * to use the structure sees it as it was before the operation or as it is after it, never in
 * between, with nothing to repair by hand. An operation that cannot become visible in one
 * store is written first as a redo record in the structure's header; whoever finds the record
 * of a dead writer finishes it (under the structure's lock) before doing anything else. With
 * MMAPD_PERSIST_DURABLE the same holds across a power loss (docs/client-api.md gives the
 * msync order). Every fixed string set (mmapd_fstr_set*()) is atomic too, by its layout (one
 * commit word over two buffers). Structs are the caller's bytes: their plain stores are not
 * journalled; writes through a struct writer (mmapd_pwriter_write()) are.
 */

/*
 * What a persistent struct is: a type name (at most MMAPD_LAYOUT_NAME_MAX bytes are kept,
 * the whole name is hashed), a version the application bumps when the struct's meaning
 * changes, and the struct's size and alignment (a power of two, at most 4096).
 * struct_size is sizeof(struct mmapd_layout) as the caller was compiled, set by
 * MMAPD_LAYOUT(), as in struct mmapd_open_opts: a field added later goes at the end, and
 * the library reads only what the caller's size covers (every field up to align is
 * required; a larger struct from a newer header is accepted while its unknown tail is zero).
 */
struct mmapd_layout {
	size_t struct_size;
	const char *type_name;
	uint32_t version;
	uint32_t size;
	uint32_t align;
};
#ifndef __cplusplus
/* The layout of C type `type`, for mmapd_pstruct_open(). */
#define MMAPD_LAYOUT(type, type_name, version) \
	((struct mmapd_layout){ sizeof(struct mmapd_layout), (type_name), (version), \
	                        sizeof(type), _Alignof(type) })
#endif
#define MMAPD_LAYOUT_NAME_MAX 23
/* The header in front of every persistent struct, in bytes. */
#define MMAPD_PSTRUCT_HEADER 64

#define MMAPD_PSTRUCT_INIT 0x1u /* format the struct (zeroed) if the header is still empty */

/*
 * Bytes a persistent struct of this layout takes from its offset: the header, padding up to
 * the struct's alignment, the struct. Returns 0 for an invalid layout (see above).
 */
MMAPD_EXPORT uint64_t mmapd_pstruct_footprint(const struct mmapd_layout *layout);
/*
 * Opens the persistent struct at window offset off (a multiple of 8 and of layout->align in
 * the region), which the header there must describe exactly: same type name, version, size
 * and alignment, else nothing is reinterpreted and the call fails. With MMAPD_PSTRUCT_INIT an
 * empty header (all zero) is formatted first and the struct zeroed; processes racing to do so
 * end with one format (the others wait for it, up to about two seconds). The formatter holds
 * an exclusive mmapd_lock() on the 64 header bytes while it formats and records its process
 * id there; the daemon drops the lock if the formatter dies, and once its process is gone too
 * (kill(pid, 0) says ESRCH, or a zombie) the next open with MMAPD_PSTRUCT_INIT formats the
 * half-formatted struct again from scratch (zeroed, re-initialized). A daemon restart without
 * the fd-store handover drops a live formatter's lock: others wait for it as for the lock
 * (same pid namespace assumed: docs/client-api.md). A struct found ready is opened with no
 * request to the daemon. On success *ret_ptr points at the struct, inside the mapping: valid
 * while the mapping does not move (see mmapd_region_data()).
 * Returns 0, or -EINVAL (NULL argument, invalid layout, misaligned off, unknown flags),
 * -ERANGE (the struct does not fit the window), -ENODATA (empty header, or one whose formatter
 * died, and no MMAPD_PSTRUCT_INIT), -EACCES (formatting asked of a read-only mapping), -EPROTO
 * (the header describes another type, version, size or alignment: the message says which),
 * -EBADMSG (the header is not one: bad magic or checksum), -EAGAIN (another process is
 * formatting it and did not finish in time), and the errors of mmapd_lock() when the header
 * is not ready.
 */
MMAPD_EXPORT int mmapd_pstruct_open(struct mmapd_region *region, uint64_t off,
                                    const struct mmapd_layout *layout, unsigned flags,
                                    void **ret_ptr);

/*
 * A fixed-capacity string to embed in a persistent struct: declare the member with
 * MMAPD_FSTR(capacity) (capacity: the longest string, in bytes, below 2^31) and pass its
 * address, cast to struct mmapd_fstr *, together with the capacity (MMAPD_FSTR_ARGS(m)). It
 * holds one commit word (generation, buffer in use, length) and two buffers of capacity + 1
 * bytes, so it takes 8 + 2 * (capacity + 1) bytes, rounded up to 8; a zeroed one is the
 * empty string. Read it only through mmapd_fstr_len(), _copy() and _cmp(): which buffer holds
 * the string changes at every set. Every set is atomic: the new bytes go into the idle buffer, then one store of the
 * word publishes them, so a reader racing the set, or the next process after the setter died
 * at any instruction, sees the old string or the new one, never a mix. Two sets of one string
 * at once need the caller's lock. Across a power loss: mmapd_pwriter_fstr_set() with a
 * MMAPD_PERSIST_DURABLE writer syncs the bytes before the word and the word before returning;
 * a plain set is on disk once mmapd_flush() or mmapd_region_msync() of its pages returns, but
 * a power loss before that may keep the word's page without the bytes' page (a torn string).
 */
struct mmapd_fstr {
	uint64_t word;                 /* only ever accessed atomically, by the functions below */
	char bytes[];
};
#define MMAPD_FSTR(capacity) struct { uint64_t word; char bytes[2][(capacity) + 1]; }
/* The string and capacity arguments of the mmapd_fstr_* functions for a MMAPD_FSTR member m. */
#define MMAPD_FSTR_ARGS(m) ((struct mmapd_fstr *)&(m)), (sizeof((m).bytes[0]) - 1)

/*
 * Sets s to the len bytes at str, which must be UTF-8 (no NUL needed; embedded NULs are
 * kept). Returns 0, -EILSEQ (not well-formed UTF-8: s is unchanged), -ENAMETOOLONG (len >
 * capacity: s is unchanged), -EINVAL (NULL s, s not 8-byte aligned, capacity 2^31 or
 * more, or NULL str with len > 0).
 * mmapd_fstr_set_raw() stores any bytes, unchecked (no -EILSEQ).
 */
MMAPD_EXPORT int mmapd_fstr_set(struct mmapd_fstr *s, size_t capacity, const char *str,
                                size_t len);
MMAPD_EXPORT int mmapd_fstr_set_raw(struct mmapd_fstr *s, size_t capacity, const char *str,
                                    size_t len);
/* mmapd_fstr_set() of a C string. */
MMAPD_EXPORT int mmapd_fstr_set_cstr(struct mmapd_fstr *s, size_t capacity, const char *str);
/*
 * As mmapd_fstr_set(), cutting str to capacity bytes or fewer, never in the middle of a
 * UTF-8 sequence. Returns 0 when all of it fit, 1 when it was cut, -EILSEQ, -EINVAL.
 */
MMAPD_EXPORT int mmapd_fstr_set_trunc(struct mmapd_fstr *s, size_t capacity, const char *str,
                                      size_t len);
/*
 * The string's length, or -EBADMSG when the stored length is above capacity (corrupt or not
 * a string). -EINVAL for NULL.
 */
MMAPD_EXPORT int64_t mmapd_fstr_len(const struct mmapd_fstr *s, size_t capacity);
/*
 * Copies s, NUL-terminated, into buf of size bytes. Returns its length, -ERANGE (buf too
 * small: nothing copied), -EBADMSG (corrupt, as above), -EINVAL.
 */
MMAPD_EXPORT int64_t mmapd_fstr_copy(const struct mmapd_fstr *s, size_t capacity, char *buf,
                                     size_t size);
/*
 * Compares s with the len bytes at str as memcmp() would, the shorter first when one is a
 * prefix of the other: < 0, 0, > 0. A corrupt or NULL s, or a NULL str, compares as if empty.
 */
MMAPD_EXPORT int mmapd_fstr_cmp(const struct mmapd_fstr *s, size_t capacity, const char *str,
                                size_t len);

/*
 * Journalled writes into persistent structs: a writer of region owner's structs makes each
 * mmapd_pwriter_write() and mmapd_pwriter_fstr_set() atomic with respect to the death of the
 * process doing it (and, with MMAPD_PERSIST_DURABLE, a power loss): the bytes are staged and a
 * redo record committed in a companion region "<owner>.journal" (created with
 * MMAPD_PERSIST_CREATE), then copied into place. Whoever next opens a writer on the owner, or
 * writes through one, finishes a write whose process died after its commit point; a process
 * that reads structs after a crash opens a writer first. Stores made otherwise (plain C
 * stores, memcpy) are not journalled: a crash may tear them (fixed string sets excepted).
 *
 * Opens the writer (flags: MMAPD_PERSIST_*; owner mapped read-write, borrowed: close the
 * writer first), finishing a dead writer's write. Returns 0 with *ret_writer, -EACCES (owner
 * read-only), -EPERM (the journal region has another owner than owner's, a write bit owner's
 * mode lacks, or group write for another group), -ENAMETOOLONG, -EBADMSG (a corrupt
 * journal), and the errors of mmapd_pvec_open().
 */
struct mmapd_pwriter;
MMAPD_EXPORT int mmapd_pwriter_open(struct mmapd_client *client, struct mmapd_region *owner,
                                    unsigned flags, struct mmapd_pwriter **ret_writer);
/* Closes the writer (releasing its lock if held). Accepts NULL. */
MMAPD_EXPORT void mmapd_pwriter_close(struct mmapd_pwriter *w);
/* The journal's lock, as mmapd_pvec_lock(): writers in several processes must hold it. */
MMAPD_EXPORT int mmapd_pwriter_lock(struct mmapd_pwriter *w, int timeout_ms);
MMAPD_EXPORT int mmapd_pwriter_unlock(struct mmapd_pwriter *w);
/* The journal's region (borrowed), e.g. for mmapd_delete() of its name. */
MMAPD_EXPORT struct mmapd_region *mmapd_pwriter_region(const struct mmapd_pwriter *w);
/*
 * Copies the len bytes at src (anywhere, even overlapping) to dst, which must lie in the
 * owner's window, as one atomic step across a crash: all of them or none. The staging area
 * grows to the largest write. Returns 0, -ERANGE (dst..dst+len outside the window), -EINVAL,
 * -EBUSY (another live process is mid-write: writers must hold the lock), -EIO (durable
 * msync), and the errors of growing a region.
 */
MMAPD_EXPORT int mmapd_pwriter_write(struct mmapd_pwriter *w, void *dst, const void *src,
                                     size_t len);
/*
 * mmapd_fstr_set() of s, which must lie in the owner's window, after finishing a dead writer's
 * write; with a MMAPD_PERSIST_DURABLE writer, the new bytes are msynced before the commit word
 * is stored and the word after it, so a power loss leaves the old string or the new one (the
 * durable set). Nothing is journalled: the set is atomic by itself. Returns 0, the errors of
 * mmapd_fstr_set(), -ERANGE (s outside the window), -EBUSY, -EIO (msync).
 */
MMAPD_EXPORT int mmapd_pwriter_fstr_set(struct mmapd_pwriter *w, struct mmapd_fstr *s,
                                        size_t capacity, const char *str, size_t len);

/*
 * N-dimensional arrays: a persistent struct "mmapd.ndarray" at a window offset (a multiple
 * of 64 in the region) whose body records the element type and shape, followed by the
 * elements in row-major (C) order, 64-byte aligned. Opening hands back a private view: the
 * type, shape and strides (in bytes) are copied out of the header once, checked, and used
 * from there, so access through the view never leaves the array whatever another process
 * writes to the header.
 */
enum mmapd_dtype {
	MMAPD_DT_U8, MMAPD_DT_I8, MMAPD_DT_U16, MMAPD_DT_I16, MMAPD_DT_U32, MMAPD_DT_I32,
	MMAPD_DT_U64, MMAPD_DT_I64, MMAPD_DT_F32, MMAPD_DT_F64,
	MMAPD_DT_FORCE_32BIT = 0x7fffffff
};
#define MMAPD_ND_DIMS_MAX 8
struct mmapd_ndview {
	uint8_t *data;                 /* element 0 of the view, in the mapping */
	uint32_t dtype;                /* enum mmapd_dtype */
	uint32_t ndim;
	size_t elem_size;
	uint64_t shape[MMAPD_ND_DIMS_MAX];
	int64_t strides[MMAPD_ND_DIMS_MAX];   /* bytes between neighbours along each dimension */
};
/*
 * Bytes an array of this type and shape takes from its offset (header and elements), or 0
 * when the type or shape is invalid (no dimension, more than MMAPD_ND_DIMS_MAX, one of 0).
 */
MMAPD_EXPORT uint64_t mmapd_ndarray_footprint(unsigned dtype, unsigned ndim,
                                              const uint64_t *shape);
/*
 * Opens the array at window offset off into *ret_view. With ndim > 0 the header must record
 * exactly dtype and shape (-EPROTO otherwise), and MMAPD_PSTRUCT_INIT formats an empty one
 * (zeroed elements), racing processes ending with one format, as mmapd_pstruct_open(). With
 * ndim 0 (dtype and shape ignored) the array is opened with whatever type and shape its
 * header records. Returns 0, -EINVAL (NULL, invalid type or shape, ndim 0 with
 * MMAPD_PSTRUCT_INIT), -ERANGE (the array does not fit the window: checked before anything
 * is formatted, so the region is left as it was), -EBADMSG (corrupt header), -EPROTO, and the
 * errors of mmapd_pstruct_open(). The view borrows the mapping.
 */
MMAPD_EXPORT int mmapd_ndarray_open(struct mmapd_region *region, uint64_t off, unsigned dtype,
                                    unsigned ndim, const uint64_t *shape, unsigned flags,
                                    struct mmapd_ndview *ret_view);
/* Points *ret_ptr at the element at index (view->ndim indexes). Returns 0, -ERANGE, -EINVAL. */
MMAPD_EXPORT int mmapd_ndview_at(const struct mmapd_ndview *view, const uint64_t *index,
                                 void **ret_ptr);
/*
 * A view of the elements start <= i < stop along dimension dim (the others whole), sharing
 * the elements. Returns 0, -ERANGE (empty or out of the view), -EINVAL.
 */
MMAPD_EXPORT int mmapd_ndview_slice(const struct mmapd_ndview *view, unsigned dim,
                                    uint64_t start, uint64_t stop,
                                    struct mmapd_ndview *ret_view);
/* The view of index i along dimension dim, one dimension fewer (a row of a matrix). Returns
 * 0, -ERANGE, -EINVAL (also for a view of one dimension: use mmapd_ndview_at()). */
MMAPD_EXPORT int mmapd_ndview_index(const struct mmapd_ndview *view, unsigned dim, uint64_t i,
                                    struct mmapd_ndview *ret_view);
/*
 * Writes the .npy (version 1.0) header of the view's type and shape into buf: followed by
 * the view's elements (row-major, contiguous: a whole array, or a slice of its first
 * dimension), it makes a file numpy.load() reads. Returns its length (a multiple of 64),
 * -ERANGE (size too small), -EINVAL.
 */
MMAPD_EXPORT int64_t mmapd_ndview_npy_header(const struct mmapd_ndview *view, char *buf,
                                             size_t size);

/* Flags of mmapd_pvec_open() and mmapd_phash_open(). */
#define MMAPD_PERSIST_CREATE    0x1u /* create the region (file) if it does not exist */
#define MMAPD_PERSIST_ANONYMOUS 0x2u /* with CREATE: an anonymous region (gone when the daemon
                                        stops) */
#define MMAPD_PERSIST_DURABLE   0x4u /* every operation is on stable storage when it returns,
                                        and a power loss leaves it before or after (msync) */
/*
 * Address space held for the region of a vector or hash map: it grows in place up to this,
 * so its elements never move in any process; growth beyond fails with -EFBIG.
 */
#define MMAPD_PERSIST_RESERVE (1ull << 36)

struct mmapd_pvec;
struct mmapd_phash;

/*
 * A persistent vector of elements of elem_size bytes, alone in region name: a header page,
 * then the elements, contiguous. Capacity grows by whole segments of at least 64 KiB
 * (doubling, resizing the region through the daemon), appended in place inside the
 * reservation: elements never move, and a pointer from mmapd_pvec_at() stays valid while the
 * vector is open. Other processes' mappings follow the growth; any call that needs bytes
 * beyond this process's mapping first makes a round trip to the daemon to catch up.
 *
 * Concurrency: one writer at a time. Processes (or threads) that push, pop, set, clear or
 * reserve concurrently must hold mmapd_pvec_lock(). The length is published with a release
 * store after the element is written, so a reader without the lock sees a length whose
 * elements are complete (get and at of an index below it), but an element being set
 * concurrently may be read torn.
 *
 * Opens (flags: MMAPD_PERSIST_*) the vector of region name, creating and formatting it when
 * needed; processes racing to create it end with one vector. Returns 0 with *ret_vec (close
 * with mmapd_pvec_close()), or -EINVAL (elem_size 0 or above 2^31, bad flags), -EPROTO (the
 * region holds something else, or a vector of another element size), -EBADMSG (corrupt
 * header), -EAGAIN, the errors of mmapd_region_open() and mmapd_pstruct_open().
 */
MMAPD_EXPORT int mmapd_pvec_open(struct mmapd_client *client, const char *name,
                                 size_t elem_size, unsigned flags, struct mmapd_pvec **ret_vec);
/* Closes the vector (releasing its lock if held) and its mapping. Accepts NULL. */
MMAPD_EXPORT void mmapd_pvec_close(struct mmapd_pvec *vec);
/*
 * Takes (exclusive) or releases the vector's lock, a daemon lock on its header: see
 * mmapd_lock() (timeout_ms, errors). The lock dies with the process. -EALREADY when this
 * handle already holds it, -ENOLCK (unlock) when it does not.
 */
MMAPD_EXPORT int mmapd_pvec_lock(struct mmapd_pvec *vec, int timeout_ms);
MMAPD_EXPORT int mmapd_pvec_unlock(struct mmapd_pvec *vec);
/* The number of elements (acquire load), and the elements room is made for. */
MMAPD_EXPORT uint64_t mmapd_pvec_len(const struct mmapd_pvec *vec);
MMAPD_EXPORT uint64_t mmapd_pvec_capacity(const struct mmapd_pvec *vec);
/* The element size the vector was created with. */
MMAPD_EXPORT size_t mmapd_pvec_elem_size(const struct mmapd_pvec *vec);
/*
 * Appends the element at elem (elem_size bytes), growing first when full. Returns 0, -EFBIG
 * (growth would pass MMAPD_PERSIST_RESERVE), -EBADMSG (header corrupt), -EINVAL (NULL), or
 * the errors of mmapd_stat() and mmapd_resize() (-ENOSPC, -EFBIG, connection errors).
 */
MMAPD_EXPORT int mmapd_pvec_push(struct mmapd_pvec *vec, const void *elem);
/*
 * Appends the count elements at elems (count * elem_size bytes) at once: all of them or,
 * after a crash, none. Returns 0 or the errors of mmapd_pvec_push().
 */
MMAPD_EXPORT int mmapd_pvec_extend(struct mmapd_pvec *vec, const void *elems, uint64_t count);
/*
 * Removes the last element, copying it to ret_elem (may be NULL). Returns 0, -ERANGE (empty).
 * These and the accessors below also return -EINVAL (NULL) and -EBADMSG (the length claims
 * elements the region does not hold).
 */
MMAPD_EXPORT int mmapd_pvec_pop(struct mmapd_pvec *vec, void *ret_elem);
/* Copies element i to ret_elem / overwrites it from elem. Returns 0, -ERANGE (i >= len). */
MMAPD_EXPORT int mmapd_pvec_get(struct mmapd_pvec *vec, uint64_t i, void *ret_elem);
MMAPD_EXPORT int mmapd_pvec_set(struct mmapd_pvec *vec, uint64_t i, const void *elem);
/* Points *ret_ptr at element i, inside the mapping. Returns 0, -ERANGE (i >= len). */
MMAPD_EXPORT int mmapd_pvec_at(struct mmapd_pvec *vec, uint64_t i, void **ret_ptr);
/* Sets the length to 0 (capacity stays). Returns 0. */
MMAPD_EXPORT int mmapd_pvec_clear(struct mmapd_pvec *vec);
/* Sets the length to len, no more than it is. Returns 0, -ERANGE (len > length). */
MMAPD_EXPORT int mmapd_pvec_truncate(struct mmapd_pvec *vec, uint64_t len);
/*
 * Inserts elem before element i (i == length appends), moving the elements from i on up by
 * one. Returns 0, -ERANGE (i > length), or the errors of mmapd_pvec_push() and -EBUSY
 * (another live process is in the middle of an operation: writers must hold the lock).
 */
MMAPD_EXPORT int mmapd_pvec_insert(struct mmapd_pvec *vec, uint64_t i, const void *elem);
/*
 * Removes element i, copying it to ret_elem (may be NULL): mmapd_pvec_remove() moves the
 * elements after it down by one (order kept, O(length)); mmapd_pvec_swap_remove() moves the
 * last element into its place (O(1)). Returns 0, -ERANGE (i >= length), -EBUSY, -EBADMSG.
 */
MMAPD_EXPORT int mmapd_pvec_remove(struct mmapd_pvec *vec, uint64_t i, void *ret_elem);
MMAPD_EXPORT int mmapd_pvec_swap_remove(struct mmapd_pvec *vec, uint64_t i, void *ret_elem);
/* Compares two elements (or a key and an element) as qsort()'s and bsearch()'s do. */
typedef int mmapd_pvec_cmp_fn(const void *a, const void *b);
/*
 * Sorts the vector with qsort() in scratch space past its capacity (the region grows by up
 * to the vector's size for it), then copies the result over in one journalled step: a crash
 * leaves it unsorted or sorted. Returns 0, -EINVAL, -EBUSY, or the errors of growing.
 */
MMAPD_EXPORT int mmapd_pvec_sort(struct mmapd_pvec *vec, mmapd_pvec_cmp_fn *cmp);
/*
 * Binary search of a vector sorted by cmp (called as cmp(key, element)). Returns 0 with the
 * index of a matching element in *ret_index, or -ENOENT with the index where key would be
 * inserted to keep the order; -EINVAL, -EBADMSG.
 */
MMAPD_EXPORT int mmapd_pvec_bsearch(struct mmapd_pvec *vec, const void *key,
                                    mmapd_pvec_cmp_fn *cmp, uint64_t *ret_index);
/*
 * Called for element i (elem points at it, in the mapping); a non-zero return stops the
 * iteration and becomes its result. It must not change the vector's length.
 */
typedef int mmapd_pvec_fn(uint64_t i, void *elem, void *userdata);
#define MMAPD_PVEC_REVERSE 0x1u   /* mmapd_pvec_foreach(): from the last element down */
/*
 * Calls fn for the elements i with from <= i < to (to is cut to the length: UINT64_MAX for
 * all), in increasing order, or decreasing with MMAPD_PVEC_REVERSE. Returns 0, fn's result,
 * -EINVAL, -EBADMSG.
 */
MMAPD_EXPORT int mmapd_pvec_foreach(struct mmapd_pvec *vec, uint64_t from, uint64_t to,
                                    unsigned flags, mmapd_pvec_fn *fn, void *userdata);
/* Makes room for at least count elements. Returns 0 or the errors of mmapd_pvec_push(). */
MMAPD_EXPORT int mmapd_pvec_reserve(struct mmapd_pvec *vec, uint64_t count);
/* The region under the vector (borrowed), e.g. for mmapd_flush(mmapd_region_name(...)). */
MMAPD_EXPORT struct mmapd_region *mmapd_pvec_region(const struct mmapd_pvec *vec);

/*
 * A persistent hash map from keys of key_size bytes to values of val_size bytes, compared and
 * hashed as bytes (zero any padding), alone in region name: open addressing with linear
 * probing and tombstones. When live entries plus tombstones would pass 3/4 of the slots, the
 * table is rebuilt (doubled when needed, resizing the region; tombstones dropped).
 *
 * Concurrency: a put may rebuild the table, moving every entry, so when any process writes,
 * every process must hold mmapd_phash_lock() for every call, reads included. The count alone
 * is safe to read without it. A put, remove or rebuild interrupted by a crash is finished by
 * the next process that uses the map (see "Crash safety" above). The region takes up to
 * twice the table's bytes: a rebuild builds the new table past the old one.
 *
 * Opens as mmapd_pvec_open() does. Returns 0 with *ret_map (close with mmapd_phash_close()),
 * or the errors of mmapd_pvec_open() (-EINVAL: a size 0 or above 2^20; -EPROTO: other sizes).
 * A header that looks wrong (a write under way elsewhere can make it look so) is read again
 * under the map's lock, waited for up to 10 s (-ETIMEDOUT; -EDEADLK if this connection holds
 * it); only one still wrong then is -EBADMSG.
 */
MMAPD_EXPORT int mmapd_phash_open(struct mmapd_client *client, const char *name,
                                  size_t key_size, size_t val_size, unsigned flags,
                                  struct mmapd_phash **ret_map);
/* Closes the map (releasing its lock if held). Accepts NULL. */
MMAPD_EXPORT void mmapd_phash_close(struct mmapd_phash *map);
/* As mmapd_pvec_lock() and mmapd_pvec_unlock(). */
MMAPD_EXPORT int mmapd_phash_lock(struct mmapd_phash *map, int timeout_ms);
MMAPD_EXPORT int mmapd_phash_unlock(struct mmapd_phash *map);
/* The number of entries (acquire load). */
MMAPD_EXPORT uint64_t mmapd_phash_count(const struct mmapd_phash *map);
/*
 * Maps key to the value at val, replacing any value it had. Returns 0 (added), 1 (replaced),
 * or the errors of mmapd_pvec_push().
 */
MMAPD_EXPORT int mmapd_phash_put(struct mmapd_phash *map, const void *key, const void *val);
/* Copies key's value to ret_val (may be NULL). Returns 0, -ENOENT (absent), -EBADMSG. */
MMAPD_EXPORT int mmapd_phash_get(struct mmapd_phash *map, const void *key, void *ret_val);
/* Removes key (leaving a tombstone). Returns 0, -ENOENT (absent), -EBADMSG. */
MMAPD_EXPORT int mmapd_phash_remove(struct mmapd_phash *map, const void *key);
/*
 * Called for each entry, key and value borrowed for the call (do not change the map in it).
 * A non-zero return stops the iteration and becomes its result.
 */
typedef int mmapd_phash_fn(const void *key, void *val, void *userdata);
/* Calls fn for every entry, in table order. Returns 0, fn's result, -EBADMSG. */
MMAPD_EXPORT int mmapd_phash_foreach(struct mmapd_phash *map, mmapd_phash_fn *fn,
                                     void *userdata);
/*
 * Iteration by cursor: start with *cursor = 0; each call copies the next entry's key and
 * value to ret_key and ret_val (either may be NULL) and returns 1, or returns 0 at the end.
 * The entries are copied, so other processes may read meanwhile, and this process may
 * remove the entry just returned (or any other) between calls: a removal leaves every other
 * entry where it is, so each entry present from start to end is returned exactly once. A put
 * between calls may rebuild the table (see mmapd_phash_capacity()): entries may then be
 * returned twice or missed. Returns 1, 0, -EINVAL, -EBADMSG.
 */
MMAPD_EXPORT int mmapd_phash_next(struct mmapd_phash *map, uint64_t *cursor, void *ret_key,
                                  void *ret_val);
/*
 * The number of entries the map holds before a put rebuilds it: 3/4 of its slots (the load
 * factor; tombstones count against it until a rebuild drops them). 0 before the first put.
 */
MMAPD_EXPORT uint64_t mmapd_phash_capacity(const struct mmapd_phash *map);
/*
 * Makes room for count entries without a rebuild (rebuilding now if needed). Returns 0,
 * -EFBIG, -EBUSY, or the errors of growing the region.
 */
MMAPD_EXPORT int mmapd_phash_reserve(struct mmapd_phash *map, uint64_t count);
/* The region under the map (borrowed). */
MMAPD_EXPORT struct mmapd_region *mmapd_phash_region(const struct mmapd_phash *map);

/*
 * A persistent string map: keys and values of any length (below 2^31 bytes; strings above
 * all, any bytes allowed), alone in region name (the index, a hash map) and region
 * "<name>.arena" (the bytes, a vector of bytes appended to: replaced and removed entries'
 * bytes stay until mmapd_pstrmap_compact()). Each put, remove and compaction is atomic across a
 * crash of its process (the bytes are appended first, then one index entry commits them). Concurrency as for hash maps:
 * when any process writes, every process holds mmapd_pstrmap_lock() for every call.
 *
 * Opens (flags MMAPD_PERSIST_*) both regions. Returns 0 with *ret_map, -ENAMETOOLONG (name
 * plus ".arena" above 255 bytes), and the errors of mmapd_phash_open() and mmapd_pvec_open().
 */
struct mmapd_pstrmap;
MMAPD_EXPORT int mmapd_pstrmap_open(struct mmapd_client *client, const char *name,
                                    unsigned flags, struct mmapd_pstrmap **ret_map);
/* Closes both regions (releasing the lock if held). Accepts NULL. */
MMAPD_EXPORT void mmapd_pstrmap_close(struct mmapd_pstrmap *map);
/* The map's lock: the index's (mmapd_phash_lock()). */
MMAPD_EXPORT int mmapd_pstrmap_lock(struct mmapd_pstrmap *map, int timeout_ms);
MMAPD_EXPORT int mmapd_pstrmap_unlock(struct mmapd_pstrmap *map);
/*
 * Maps the klen bytes at key to the vlen bytes at val. Returns 0 (added), 1 (replaced),
 * -E2BIG (a key of 2^31 bytes or more), -EINVAL, and the errors of mmapd_pvec_push() and
 * mmapd_phash_put().
 */
MMAPD_EXPORT int mmapd_pstrmap_put(struct mmapd_pstrmap *map, const void *key, size_t klen,
                                   const void *val, size_t vlen);
/*
 * Points *ret_val at key's value (inside the arena, borrowed: valid while the map is open,
 * even after the key is replaced or removed) and sets *ret_len (either may be NULL). Returns
 * 0, -ENOENT, -EBADMSG (an index entry pointing outside the arena), -EINVAL.
 */
MMAPD_EXPORT int mmapd_pstrmap_get(struct mmapd_pstrmap *map, const void *key, size_t klen,
                                   const void **ret_val, size_t *ret_len);
/* Removes key. Returns 0, -ENOENT, -EBADMSG, -EINVAL, the errors of mmapd_phash_put(). */
MMAPD_EXPORT int mmapd_pstrmap_remove(struct mmapd_pstrmap *map, const void *key, size_t klen);
/* The number of entries (removed ones not counted): one load, kept by every put and remove. */
MMAPD_EXPORT uint64_t mmapd_pstrmap_count(const struct mmapd_pstrmap *map);
/*
 * Reclaims the arena bytes of replaced and removed entries and the index's tombstones: the
 * live keys and values are packed at the arena's start and the index rebuilt to point at
 * them, atomic across a crash of this process (before or after; a crash after the commit may
 * leave the arena longer than needed until the next compaction). The arena's region keeps
 * its size (appends reuse it) and grows by the live bytes while compacting. Every pointer
 * mmapd_pstrmap_get() and mmapd_pstrmap_next() handed out, in any process, stops being
 * valid: compact only when no process holds one. Returns 0, -EINVAL, -ENOMEM, -EBADMSG, and
 * the errors of mmapd_pvec_extend() and mmapd_phash_reserve().
 */
MMAPD_EXPORT int mmapd_pstrmap_compact(struct mmapd_pstrmap *map);
/*
 * Iteration by cursor as mmapd_phash_next(), with borrowed pointers to the key and value
 * (any out-pointer may be NULL); removing between calls is allowed. Returns 1, 0 (the end),
 * -EBADMSG, -EINVAL.
 */
MMAPD_EXPORT int mmapd_pstrmap_next(struct mmapd_pstrmap *map, uint64_t *cursor,
                                    const void **ret_key, size_t *ret_klen,
                                    const void **ret_val, size_t *ret_vlen);
/* The hash map and byte vector under the map (borrowed), e.g. for their regions. */
MMAPD_EXPORT struct mmapd_phash *mmapd_pstrmap_index(const struct mmapd_pstrmap *map);
MMAPD_EXPORT struct mmapd_pvec *mmapd_pstrmap_arena(const struct mmapd_pstrmap *map);

/*
 * Containers as fields: a struct mmapd_pfield (16 bytes, 8-byte aligned) in a persistent
 * struct, or anywhere in a region, stands for a growing vector or hash map kept in a
 * companion region named "<owner>.f<offset>" (the owner region's name and the field's
 * offset in it, see mmapd_pfield_name()). The first open records in the field what it holds
 * (vector or hash map, and the sizes); later opens must ask for the same (-EPROTO). A zeroed
 * field holds nothing yet.
 */
struct mmapd_pfield {
	uint64_t desc;                 /* what it holds; set once, atomically, by the library */
	uint64_t reserved;
};
/*
 * Writes the companion region's name into buf (e.g. for mmapd_delete()). Returns its length,
 * -ERANGE (the field is not in the owner's window, or buf is too small), -EINVAL (NULL, or
 * the field is not 8-byte aligned in the region), -ENAMETOOLONG (above 255 bytes).
 */
MMAPD_EXPORT int mmapd_pfield_name(const struct mmapd_region *owner,
                                   const struct mmapd_pfield *field, char *buf, size_t size);
/*
 * Opens (flags: MMAPD_PERSIST_*, as mmapd_pvec_open() and mmapd_phash_open()) the vector or
 * hash map the field of region owner stands for, recording its kind and sizes in the field
 * first. Returns 0 with *ret_vec / *ret_map, -EPROTO (the field holds another kind or other
 * sizes), -ENODATA (an empty field in a read-only mapping), the errors of
 * mmapd_pfield_name() and of mmapd_pvec_open() / mmapd_phash_open().
 */
MMAPD_EXPORT int mmapd_pvec_open_field(struct mmapd_client *client, struct mmapd_region *owner,
                                       struct mmapd_pfield *field, size_t elem_size,
                                       unsigned flags, struct mmapd_pvec **ret_vec);
MMAPD_EXPORT int mmapd_phash_open_field(struct mmapd_client *client, struct mmapd_region *owner,
                                        struct mmapd_pfield *field, size_t key_size,
                                        size_t val_size, unsigned flags,
                                        struct mmapd_phash **ret_map);

#ifdef __cplusplus
}
#endif

#endif
