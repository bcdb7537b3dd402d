/* SPDX-License-Identifier: MIT */
/*
 * Atomic views of a window: pointers to naturally aligned 8-, 16-, 32- and 64-bit words,
 * unsigned, signed or bool (or arrays of them), for C11 atomic operations shared by every
 * process that maps the region.
 *
 * C11 atomics are only usable across processes when they are lock-free: a lock-based atomic
 * keeps its lock in this process's memory, where other processes cannot see it. Lock-free
 * atomics are address-free (the operation is a single instruction on the memory itself), so
 * two processes mapping the same page at different addresses synchronise as two threads
 * would. The static assertions below refuse to build libmmapd where that does not hold.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include "domain.h"

_Static_assert(ATOMIC_BOOL_LOCK_FREE == 2 && ATOMIC_CHAR_LOCK_FREE == 2 &&
               ATOMIC_SHORT_LOCK_FREE == 2 && sizeof(short) == 2 && sizeof(_Bool) == 1,
               "8- and 16-bit atomics must be always lock-free to be shared between processes");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && sizeof(int) == 4,
               "32-bit atomics must be always lock-free to be shared between processes");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_LONG_LOCK_FREE == 2 &&
               sizeof(long long) == 8,
               "64-bit atomics must be always lock-free to be shared between processes");

/*
 * Checks count words of size bytes at window offset off and returns their address in *ret.
 * Returns 0, -EINVAL or -ERANGE (message set).
 */
static int atomic_view(struct mmapd_region *region, uint64_t off, size_t count, size_t size,
                       void **ret)
{
	uint8_t *data;
	int r;

	if (!region || count == 0)
		return error_set(-EINVAL, "region is NULL or count is 0");
	if (count > SIZE_MAX / size)
		return error_set(-ERANGE, "%zu words of %zu bytes do not fit the address space",
		                 count, size);
	r = region_check_range(region, off, count * size);
	if (r < 0)
		return r;
	/* The mapping is page-aligned, so this is the alignment within the region as well. */
	data = atomic_load(&region->data);
	if ((uintptr_t)(data + off) % size != 0)
		return error_set(-EINVAL, "offset %llu of '%s' (region offset %llu) is not aligned "
		                 "to %zu bytes", (unsigned long long)off, region->name,
		                 (unsigned long long)(region->offset + off), size);
	*ret = data + off;
	return 0;
}

/* The slice and single-word views of one type: same checks, its size and alignment. */
#define ATOMIC_VIEWS(name, type)                                                           \
	MMAPD_EXPORT int mmapd_region_atomic_##name##_slice(struct mmapd_region *region,       \
	                                                    uint64_t off, size_t count,         \
	                                                    type **ret_atomic)                  \
	{                                                                                      \
		void *p;                                                                           \
		int r;                                                                             \
                                                                                           \
		if (!ret_atomic)                                                                   \
			return error_set(-EINVAL, "ret_atomic is NULL");                               \
		r = atomic_view(region, off, count, sizeof(**ret_atomic), &p);                     \
		if (r == 0)                                                                        \
			*ret_atomic = p;                                                               \
		return r;                                                                          \
	}                                                                                      \
	MMAPD_EXPORT int mmapd_region_atomic_##name(struct mmapd_region *region, uint64_t off, \
	                                            type **ret_atomic)                          \
	{                                                                                      \
		return mmapd_region_atomic_##name##_slice(region, off, 1, ret_atomic);             \
	}

ATOMIC_VIEWS(u8, _Atomic uint8_t)
ATOMIC_VIEWS(u16, _Atomic uint16_t)
ATOMIC_VIEWS(u32, _Atomic uint32_t)
ATOMIC_VIEWS(u64, _Atomic uint64_t)
ATOMIC_VIEWS(i8, _Atomic int8_t)
ATOMIC_VIEWS(i16, _Atomic int16_t)
ATOMIC_VIEWS(i32, _Atomic int32_t)
ATOMIC_VIEWS(i64, _Atomic int64_t)
ATOMIC_VIEWS(bool, _Atomic _Bool)
