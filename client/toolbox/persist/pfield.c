/* SPDX-License-Identifier: MIT */
/*
 * Containers as fields (memmap3's segmented fields): a persistent struct, or any bytes of a
 * region, holds a struct mmapd_pfield, and the vector or hash map it stands for lives in a
 * companion region of its own, named after the owner region and the field's offset in it
 * ("<owner>.f<offset>"), so it grows in place (pvec.c, phash.c) while the struct stays put.
 *
 * The field records what it holds (vector or hash map, and the sizes), set once with a
 * compare-and-swap, so every process that opens it agrees on the companion's shape or is
 * refused; the companion's name needs no storage, being derived. A process that dies between
 * recording the field and creating the companion leaves a field whose companion is created by
 * the next open with MMAPD_PERSIST_CREATE.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "persist.h"
#include "toolbox.h"

enum { PFIELD_VEC = 1, PFIELD_HASH = 2 };

#define PFIELD_NAME_MAX 255   /* a region name's longest (docs/protocol.md) */

static uint64_t pfield_desc(unsigned kind, uint64_t a, uint64_t b)
{
	return (uint64_t)kind << 62 | a << 21 | b;
}

MMAPD_EXPORT int mmapd_pfield_name(const struct mmapd_region *owner,
                                   const struct mmapd_pfield *field, char *buf, size_t size)
{
	const uint8_t *data, *f = (const uint8_t *)field;
	uint64_t off;
	int n;

	if (!owner || !field || !buf)
		return tbx_error(-EINVAL, "owner, field or buf is NULL");
	data = mmapd_region_data(owner);
	if (f < data || (uint64_t)(f - data) > UINT64_MAX - sizeof(*field) ||
	    !tbx_region_covers(owner, (uint64_t)(f - data) + sizeof(*field)))
		return tbx_error(-ERANGE, "the field does not lie in the window of '%s'",
		                 mmapd_region_name(owner));
	off = mmapd_region_offset(owner) + (uint64_t)(f - data);
	if (off % 8)
		return tbx_error(-EINVAL, "the field at offset %llu of '%s' is not 8-byte aligned",
		                 (unsigned long long)off, mmapd_region_name(owner));
	n = snprintf(buf, size, "%s.f%llu", mmapd_region_name(owner), (unsigned long long)off);
	if (n < 0 || (size_t)n >= size || n > PFIELD_NAME_MAX)
		return tbx_error(n > PFIELD_NAME_MAX ? -ENAMETOOLONG : -ERANGE, "the companion name "
		                 "of the field at offset %llu of '%s' is %d bytes long",
		                 (unsigned long long)off, mmapd_region_name(owner), n);
	return n;
}

/* Records desc in the field, or checks it against what is recorded. */
static int pfield_claim(const struct mmapd_region *owner, struct mmapd_pfield *field,
                        uint64_t desc, const char *name)
{
	/* The public struct is plain C++-compatible bytes; the word is used atomically here. */
	_Atomic uint64_t *word = (_Atomic uint64_t *)&field->desc;
	uint64_t was = 0;

	if (mmapd_region_mode(owner) == MMAPD_MODE_RO) {
		was = atomic_load(word);
		if (was == 0)
			return tbx_error(-ENODATA, "the field of '%s' holds nothing yet (and the mapping "
			                 "is read-only)", name);
	} else if (atomic_compare_exchange_strong(word, &was, desc)) {
		return 0;
	}
	if (was != desc)
		return tbx_error(-EPROTO, "the field for '%s' holds another kind of container, or "
		                 "other sizes (0x%llx, not 0x%llx)", name, (unsigned long long)was,
		                 (unsigned long long)desc);
	return 0;
}

MMAPD_EXPORT int mmapd_pvec_open_field(struct mmapd_client *client, struct mmapd_region *owner,
                                       struct mmapd_pfield *field, size_t elem_size,
                                       unsigned flags, struct mmapd_pvec **ret_vec)
{
	char name[PFIELD_NAME_MAX + 1];
	int r;

	if (!client || !ret_vec)
		return tbx_error(-EINVAL, "client or ret_vec is NULL");
	if (elem_size == 0 || elem_size > (1u << 31))
		return tbx_error(-EINVAL, "element size %zu is not between 1 and 2^31", elem_size);
	if ((r = mmapd_pfield_name(owner, field, name, sizeof(name))) < 0 ||
	    (r = pfield_claim(owner, field, pfield_desc(PFIELD_VEC, elem_size, 0), name)) < 0)
		return r;
	return mmapd_pvec_open(client, name, elem_size, flags, ret_vec);
}

MMAPD_EXPORT int mmapd_phash_open_field(struct mmapd_client *client, struct mmapd_region *owner,
                                        struct mmapd_pfield *field, size_t key_size,
                                        size_t val_size, unsigned flags,
                                        struct mmapd_phash **ret_map)
{
	char name[PFIELD_NAME_MAX + 1];
	int r;

	if (!client || !ret_map)
		return tbx_error(-EINVAL, "client or ret_map is NULL");
	if (key_size == 0 || key_size > (1u << 20) || val_size == 0 || val_size > (1u << 20))
		return tbx_error(-EINVAL, "key and value sizes must be between 1 and 2^20");
	if ((r = mmapd_pfield_name(owner, field, name, sizeof(name))) < 0 ||
	    (r = pfield_claim(owner, field, pfield_desc(PFIELD_HASH, key_size, val_size),
	                      name)) < 0)
		return r;
	return mmapd_phash_open(client, name, key_size, val_size, flags, ret_map);
}
