/* SPDX-License-Identifier: MIT */
/*
 * Numbers of a stated byte order at any byte offset of a window, as fmmap's read_u32_le or
 * the kernel's get_unaligned_be32 do: file formats and wire records written by one machine and
 * read by another.
 *
 * The two exported calls move size bytes (1, 2, 4 or 8) between the window and a native
 * object, reversing them when the stated order is not the host's. Signedness and floating
 * point change nothing at that level (an int32_t and a float of the same bytes are swapped
 * the same way), so the typed calls of mmapd.h (mmapd_region_get_u32le(), ...) are inline
 * wrappers that only supply the size and the order, and the compiler checks the type.
 * The copies go through mmapd_region_read() and mmapd_region_write(), so the bounds checks,
 * the read-only refusal and MMAPD_OPEN_REPORT_WRITES are theirs. memcpy makes any alignment
 * safe; nothing here is atomic (the atomic views are, for naturally aligned words).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "domain.h"

/* Floats are swapped as integers of their size: IEEE 754 in the integers' byte order. */
_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "float and double must be 4 and 8 bytes");
#if defined(__FLOAT_WORD_ORDER__) && __FLOAT_WORD_ORDER__ != __BYTE_ORDER__
#error "floating point words must be stored in the integers' byte order"
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_ORDER MMAPD_ORDER_LE
#else
#define HOST_ORDER MMAPD_ORDER_BE
#endif

/* Checks size and order. Returns 0 or -EINVAL (message set). */
static int scalar_check(size_t size, enum mmapd_byte_order order)
{
	if (size != 1 && size != 2 && size != 4 && size != 8)
		return error_set(-EINVAL, "a number is 1, 2, 4 or 8 bytes, not %zu", size);
	if (order != MMAPD_ORDER_LE && order != MMAPD_ORDER_BE)
		return error_set(-EINVAL, "unknown byte order %d", (int)order);
	return 0;
}

/* Copies size bytes from src to dst, reversed when order is not the host's. */
static void scalar_copy(uint8_t *dst, const uint8_t *src, size_t size,
                        enum mmapd_byte_order order)
{
	for (size_t i = 0; i < size; i++)
		dst[i] = src[order == HOST_ORDER ? i : size - 1 - i];
}

MMAPD_EXPORT int mmapd_region_get_scalar(const struct mmapd_region *region, uint64_t off,
                                         size_t size, enum mmapd_byte_order order,
                                         void *ret_value)
{
	uint8_t bytes[8];
	int r = scalar_check(size, order);

	if (r < 0)
		return r;
	if (!ret_value)
		return error_set(-EINVAL, "ret_value is NULL");
	r = mmapd_region_read(region, off, bytes, size);
	if (r == 0)
		scalar_copy(ret_value, bytes, size, order);
	return r;
}

MMAPD_EXPORT int mmapd_region_put_scalar(struct mmapd_region *region, uint64_t off,
                                         size_t size, enum mmapd_byte_order order,
                                         const void *value)
{
	uint8_t bytes[8];
	int r = scalar_check(size, order);

	if (r < 0)
		return r;
	if (!value)
		return error_set(-EINVAL, "value is NULL");
	scalar_copy(bytes, value, size, order);
	return mmapd_region_write(region, off, bytes, size);
}
