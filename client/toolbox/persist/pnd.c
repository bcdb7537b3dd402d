/* SPDX-License-Identifier: MIT */
/*
 * N-dimensional arrays in a region (memmap3's multidimensional arrays, NumPy's memory-mapped
 * .npy files): a persistent struct "mmapd.ndarray" (pstruct.c) whose body records the element
 * type and the shape, followed by the elements in row-major (C) order.
 *
 * Opening checks the header once and copies type and shape into a private view (struct
 * mmapd_ndview): strides are computed from the shape here, never read from shared memory,
 * and every access goes through the view, so a process that rewrites the header after open
 * cannot send a reader outside the array. Views of sub-ranges (mmapd_ndview_slice(),
 * mmapd_ndview_index()) share the elements and narrow the private shape. The header can be
 * written out as a .npy header (mmapd_ndview_npy_header()), so the array's bytes, after it,
 * make a file NumPy loads.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "persist.h"
#include "toolbox.h"

struct pnd_header {
	uint32_t dtype;
	uint32_t ndim;
	uint64_t shape[MMAPD_ND_DIMS_MAX];
	uint8_t pad[56];               /* so that the elements start 64-byte aligned */
};

static const struct mmapd_layout pnd_layout = {
	sizeof(struct mmapd_layout), "mmapd.ndarray", 1, sizeof(struct pnd_header), 64
};

/* Element size and NumPy type string of each type, in the host's byte order. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PND_BO "<"
#else
#define PND_BO ">"
#endif
static const struct { uint32_t size; const char *descr; } pnd_types[] = {
	[MMAPD_DT_U8] = { 1, "|u1" }, [MMAPD_DT_I8] = { 1, "|i1" },
	[MMAPD_DT_U16] = { 2, PND_BO "u2" }, [MMAPD_DT_I16] = { 2, PND_BO "i2" },
	[MMAPD_DT_U32] = { 4, PND_BO "u4" }, [MMAPD_DT_I32] = { 4, PND_BO "i4" },
	[MMAPD_DT_U64] = { 8, PND_BO "u8" }, [MMAPD_DT_I64] = { 8, PND_BO "i8" },
	[MMAPD_DT_F32] = { 4, PND_BO "f4" }, [MMAPD_DT_F64] = { 8, PND_BO "f8" },
};
#define PND_NTYPES (sizeof(pnd_types) / sizeof(pnd_types[0]))

/* Bytes of the elements of shape, or 0 (with -EOVERFLOW) when they pass the address space. */
static int pnd_bytes(uint32_t dtype, uint32_t ndim, const uint64_t *shape, uint64_t *ret)
{
	uint64_t n = pnd_types[dtype].size;

	for (uint32_t d = 0; d < ndim; d++) {
		/* Half the address space at most: header and offset then add without overflow. */
		if (shape[d] == 0 || n > (uint64_t)(SIZE_MAX / 2) / shape[d])
			return -EOVERFLOW;
		n *= shape[d];
	}
	*ret = n;
	return 0;
}

static bool pnd_valid(uint32_t dtype, uint32_t ndim, const uint64_t *shape)
{
	uint64_t n;

	return dtype < PND_NTYPES && pnd_types[dtype].size && ndim >= 1 &&
	       ndim <= MMAPD_ND_DIMS_MAX && shape && pnd_bytes(dtype, ndim, shape, &n) == 0;
}

MMAPD_EXPORT uint64_t mmapd_ndarray_footprint(unsigned dtype, unsigned ndim,
                                              const uint64_t *shape)
{
	uint64_t n;

	if (!pnd_valid(dtype, ndim, shape) || pnd_bytes(dtype, ndim, shape, &n) < 0)
		return 0;
	return mmapd_pstruct_footprint(&pnd_layout) + n;
}

/* Fills view for the elements at data: strides from the shape, row-major. */
static void pnd_view(struct mmapd_ndview *v, uint8_t *data, uint32_t dtype, uint32_t ndim,
                     const uint64_t *shape)
{
	int64_t stride = pnd_types[dtype].size;

	memset(v, 0, sizeof(*v));
	v->data = data;
	v->dtype = dtype;
	v->elem_size = pnd_types[dtype].size;
	v->ndim = ndim;
	for (uint32_t d = ndim; d-- > 0;) {
		v->shape[d] = shape[d];
		v->strides[d] = stride;
		stride *= (int64_t)shape[d];
	}
}

struct pnd_init {
	uint32_t dtype, ndim;
	const uint64_t *shape;
};

static int pnd_format(void *body, void *ctx)
{
	struct pnd_header *h = body;
	const struct pnd_init *in = ctx;

	h->dtype = in->dtype;
	h->ndim = in->ndim;
	memcpy(h->shape, in->shape, in->ndim * sizeof(uint64_t));
	return 0;
}

/* -ERANGE (message set) unless footprint bytes from off lie in the window. */
static int pnd_fits(const struct mmapd_region *region, uint64_t off, uint64_t footprint)
{
	if (off > UINT64_MAX - footprint || !tbx_region_covers(region, off + footprint))
		return tbx_error(-ERANGE, "the array at offset %llu of '%s' (%llu bytes with its "
		                 "header) does not fit the window", (unsigned long long)off,
		                 mmapd_region_name(region), (unsigned long long)footprint);
	return 0;
}

MMAPD_EXPORT int mmapd_ndarray_open(struct mmapd_region *region, uint64_t off, unsigned dtype,
                                    unsigned ndim, const uint64_t *shape, unsigned flags,
                                    struct mmapd_ndview *ret_view)
{
	struct pnd_init in = { dtype, ndim, shape };
	struct pnd_header h;
	uint64_t base = mmapd_pstruct_footprint(&pnd_layout), bytes = 0;
	void *body;
	int r;

	if (!region || !ret_view)
		return tbx_error(-EINVAL, "region or ret_view is NULL");
	if (ndim != 0 && !pnd_valid(dtype, ndim, shape))
		return tbx_error(-EINVAL, "invalid array: type %u, %u dimensions (1 to %d, none 0, "
		                 "the whole within the address space)", dtype, ndim, MMAPD_ND_DIMS_MAX);
	if (ndim == 0 && (flags & MMAPD_PSTRUCT_INIT))
		return tbx_error(-EINVAL, "formatting an array needs its type and shape");
	/* An array that cannot fit is refused before anything is formatted: a failed open
	 * leaves the region as it was. */
	if (ndim && (r = pnd_fits(region, off, mmapd_ndarray_footprint(dtype, ndim, shape))) < 0)
		return r;
	r = pstruct_open(region, off, &pnd_layout, flags, ndim ? pnd_format : NULL, &in, &body);
	if (r < 0)
		return r;
	/* Read once into private memory, then checked: what is used is what was checked. */
	memcpy(&h, body, sizeof(h));
	if (!pnd_valid(h.dtype, h.ndim, h.shape))
		return tbx_error(-EBADMSG, "the array header at offset %llu of '%s' is corrupt",
		                 (unsigned long long)off, mmapd_region_name(region));
	if (ndim && (h.dtype != dtype || h.ndim != ndim ||
	             memcmp(h.shape, shape, ndim * sizeof(uint64_t)) != 0))
		return tbx_error(-EPROTO, "the array at offset %llu of '%s' has another type or shape "
		                 "(type %u, %u dimensions)", (unsigned long long)off,
		                 mmapd_region_name(region), h.dtype, h.ndim);
	pnd_bytes(h.dtype, h.ndim, h.shape, &bytes);
	/* Again with what the header says: with ndim 0 it was not known before. */
	if ((r = pnd_fits(region, off, base + bytes)) < 0)
		return r;
	pnd_view(ret_view, (uint8_t *)mmapd_region_data(region) + off + base, h.dtype, h.ndim,
	         h.shape);
	return 0;
}

MMAPD_EXPORT int mmapd_ndview_at(const struct mmapd_ndview *view, const uint64_t *index,
                                 void **ret_ptr)
{
	int64_t at = 0;

	if (!view || !index || !ret_ptr)
		return tbx_error(-EINVAL, "view, index or ret_ptr is NULL");
	for (unsigned d = 0; d < view->ndim; d++) {
		if (index[d] >= view->shape[d])
			return tbx_error(-ERANGE, "index %llu of dimension %u is not below %llu",
			                 (unsigned long long)index[d], d,
			                 (unsigned long long)view->shape[d]);
		at += (int64_t)index[d] * view->strides[d];
	}
	*ret_ptr = view->data + at;
	return 0;
}

MMAPD_EXPORT int mmapd_ndview_slice(const struct mmapd_ndview *view, unsigned dim,
                                    uint64_t start, uint64_t stop,
                                    struct mmapd_ndview *ret_view)
{
	if (!view || !ret_view)
		return tbx_error(-EINVAL, "view or ret_view is NULL");
	if (dim >= view->ndim || start >= stop || stop > view->shape[dim])
		return tbx_error(-ERANGE, "[%llu, %llu) of dimension %u is not a non-empty range of "
		                 "the view", (unsigned long long)start, (unsigned long long)stop, dim);
	*ret_view = *view;
	ret_view->data += (int64_t)start * view->strides[dim];
	ret_view->shape[dim] = stop - start;
	return 0;
}

MMAPD_EXPORT int mmapd_ndview_index(const struct mmapd_ndview *view, unsigned dim, uint64_t i,
                                    struct mmapd_ndview *ret_view)
{
	struct mmapd_ndview v;
	int r;

	if (view && view->ndim < 2)
		return tbx_error(-EINVAL, "indexing would leave a view of no dimension (use "
		                 "mmapd_ndview_at())");
	r = mmapd_ndview_slice(view, dim, i, i + 1, &v);
	if (r < 0)
		return r;
	memmove(&v.shape[dim], &v.shape[dim + 1], (v.ndim - dim - 1) * sizeof(v.shape[0]));
	memmove(&v.strides[dim], &v.strides[dim + 1], (v.ndim - dim - 1) * sizeof(v.strides[0]));
	v.ndim--;
	*ret_view = v;
	return 0;
}

MMAPD_EXPORT int64_t mmapd_ndview_npy_header(const struct mmapd_ndview *view, char *buf,
                                             size_t size)
{
	char dict[256], shape[MMAPD_ND_DIMS_MAX * 22 + 4];
	size_t n = 0, total;
	int len;

	if (!view || !buf || view->ndim == 0 || view->ndim > MMAPD_ND_DIMS_MAX ||
	    view->dtype >= PND_NTYPES)
		return tbx_error(-EINVAL, "view or buf is NULL, or the view is not one");
	for (unsigned d = 0; d < view->ndim; d++)
		n += (size_t)snprintf(shape + n, sizeof(shape) - n, "%llu,%s",
		                      (unsigned long long)view->shape[d], view->ndim > 1 ? " " : "");
	if (view->ndim > 1)
		n -= 2;   /* "(2, 3)" rather than "(2, 3, )"; one dimension keeps "(5,)" */
	shape[n] = '\0';
	len = snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': False, 'shape': "
	               "(%s), }", pnd_types[view->dtype].descr, shape);
	/* Version 1.0: magic, version, 16-bit header length; padded with spaces and a newline to
	 * a multiple of 64 bytes in all. */
	total = (10 + (size_t)len + 1 + 63) / 64 * 64;
	if (total > 65535 + 10 || size < total)
		return tbx_error(-ERANGE, "a .npy header of %zu bytes does not fit %zu", total, size);
	memcpy(buf, "\x93NUMPY\x01\x00", 8);
	buf[8] = (char)((total - 10) & 0xff);
	buf[9] = (char)((total - 10) >> 8);
	memcpy(buf + 10, dict, (size_t)len);
	memset(buf + 10 + len, ' ', total - 10 - (size_t)len - 1);
	buf[total - 1] = '\n';
	return (int64_t)total;
}
