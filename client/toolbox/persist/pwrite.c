/* SPDX-License-Identifier: MIT */
/*
 * Journalled writes into persistent structs: what makes a write of a struct's fields atomic
 * with respect to the death of the process doing it (a fixed string's set is atomic by its
 * own layout, fstr.c; its writer variant uses the range check, settling and durable syncs
 * here).
 *
 * A struct is the caller's bytes at an offset of a region (pstruct.c), with no room of its
 * own for a journal, so the journal lives in a companion region, "<owner>.journal": a
 * persistent struct "mmapd.pwrite" holding the redo record of pjournal.c, then, from
 * PERSIST_DATA_OFF, a staging area that grows to the largest write. A write stages the new
 * bytes there, commits a record whose one copy goes from the staging area into the owner
 * region (pregion.target: the destination is a region offset, so windows at other offsets
 * agree), plays it and empties it. A process killed before the commit leaves the struct as
 * it was; after it, whoever next opens a writer on the owner (mmapd_pwriter_open()) or
 * writes through one plays the copy again: after. Durable writers msync in pjournal.c's
 * order, the copy's destination pages in the owner included.
 *
 * The companion is a region anyone with the right permissions may write, and what its record
 * says is copied into the owner: a journal that someone who cannot write the owner could
 * write would let them write the owner. So a journal whose region another user owns, or
 * whose mode lets anybody write it who may not write the owner, is refused.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist.h"
#include "toolbox.h"

#define PWRITE_NAME_MAX 255        /* a region name's longest (docs/protocol.md) */
#define PWRITE_STAGE_MIN 4096u     /* the staging area a journal is created with */

struct pwrite_header {
	struct pjournal journal;
};

struct mmapd_pwriter {
	struct pregion pr;             /* the journal region; pr.target is the owner */
	struct pwrite_header *h;
	struct mmapd_region *owner;    /* borrowed */
};

static const struct mmapd_layout pwrite_layout = {
	sizeof(struct mmapd_layout), "mmapd.pwrite", 1, sizeof(struct pwrite_header),
	_Alignof(struct pwrite_header)
};

/*
 * Whoever may write the journal may write the owner: the same owning user, no write bit the
 * owner's mode lacks, and, when the journal's group may write it, the owner's group.
 */
static int pwrite_trust(struct mmapd_pwriter *w)
{
	struct mmapd_region_info *own = NULL, *jr = NULL;
	int r;

	if ((r = mmapd_region_stat(w->owner, &own)) < 0 ||
	    (r = mmapd_region_stat(w->pr.region, &jr)) < 0)
		goto out;
	if (jr->uid != own->uid || (jr->perm & 0222 & ~own->perm) ||
	    ((jr->perm & 0020) && jr->gid != own->gid))
		r = tbx_error(-EPERM, "the journal '%s' (owner %u, group %u, mode %03o) lets others "
		              "write it than may write '%s' (owner %u, group %u, mode %03o)",
		              jr->name, jr->uid, jr->gid, jr->perm, own->name, own->uid, own->gid,
		              own->perm);
out:
	mmapd_region_info_free(own);
	mmapd_region_info_free(jr);
	return r;
}

static int pwrite_opened(void *body, void *ctx)
{
	struct mmapd_pwriter *w = ctx;
	int r;

	w->h = body;
	w->pr.target = w->owner;
	if ((r = pwrite_trust(w)) < 0)
		return r;
	return pjournal_settle(&w->pr, &w->h->journal, "struct journal");
}

MMAPD_EXPORT int mmapd_pwriter_open(struct mmapd_client *client, struct mmapd_region *owner,
                                    unsigned flags, struct mmapd_pwriter **ret_writer)
{
	char name[PWRITE_NAME_MAX + 2];
	struct mmapd_pwriter *w;
	int r;

	if (!client || !owner || !ret_writer)
		return tbx_error(-EINVAL, "client, owner or ret_writer is NULL");
	if (mmapd_region_mode(owner) == MMAPD_MODE_RO)
		return tbx_error(-EACCES, "'%s' is mapped read-only: nothing can be written into it",
		                 mmapd_region_name(owner));
	if ((size_t)snprintf(name, sizeof(name), "%s.journal", mmapd_region_name(owner)) >
	    PWRITE_NAME_MAX)
		return tbx_error(-ENAMETOOLONG, "'%s.journal' would be longer than %d bytes",
		                 mmapd_region_name(owner), PWRITE_NAME_MAX);
	w = calloc(1, sizeof(*w));
	if (!w)
		return tbx_error(-ENOMEM, "out of memory");
	w->owner = owner;
	r = pregion_open(&w->pr, client, name, flags, PERSIST_DATA_OFF + PWRITE_STAGE_MIN,
	                 &pwrite_layout, NULL, pwrite_opened, w);
	if (r < 0) {
		free(w);
		return r;
	}
	*ret_writer = w;
	return 0;
}

MMAPD_EXPORT void mmapd_pwriter_close(struct mmapd_pwriter *w)
{
	if (!w)
		return;
	pregion_close(&w->pr);
	free(w);
}

MMAPD_EXPORT int mmapd_pwriter_lock(struct mmapd_pwriter *w, int timeout_ms)
{
	return w ? pregion_lock(&w->pr, timeout_ms) : tbx_error(-EINVAL, "w is NULL");
}

MMAPD_EXPORT int mmapd_pwriter_unlock(struct mmapd_pwriter *w)
{
	return w ? pregion_unlock(&w->pr) : tbx_error(-EINVAL, "w is NULL");
}

MMAPD_EXPORT struct mmapd_region *mmapd_pwriter_region(const struct mmapd_pwriter *w)
{
	return w ? w->pr.region : NULL;
}

/* Makes the staging area hold len bytes: grown (doubling) only when it does not yet. */
static int pwrite_stage_room(struct mmapd_pwriter *w, uint64_t len)
{
	uint64_t want = PERSIST_DATA_OFF + len, size;

	if (tbx_region_covers(w->pr.region, want))
		return 0;
	size = mmapd_region_size(w->pr.region);
	if (want < size * 2 && size * 2 <= MMAPD_PERSIST_RESERVE)
		want = size * 2;
	return pregion_grow(&w->pr, want, "struct journal");
}

/* The owner-window offset of [dst, dst + len), or UINT64_MAX when it is not in the window. */
static uint64_t pwrite_offset(const struct mmapd_pwriter *w, const void *dst, size_t len)
{
	const uint8_t *data = mmapd_region_data(w->owner);
	uint64_t off = (uint64_t)((const uint8_t *)dst - data);

	if ((const uint8_t *)dst < data || off > UINT64_MAX - len ||
	    !tbx_region_covers(w->owner, off + len))
		return UINT64_MAX;
	return off;
}

int pwrite_prepare(struct mmapd_pwriter *w, const void *dst, size_t len)
{
	if (!w || !dst)
		return tbx_error(-EINVAL, "w or dst is NULL");
	if (pwrite_offset(w, dst, len) == UINT64_MAX)
		return tbx_error(-ERANGE, "%zu bytes at dst do not lie in the window of '%s'", len,
		                 mmapd_region_name(w->owner));
	if (atomic_load_explicit(&w->h->journal.op, memory_order_acquire) != 0)
		return pjournal_settle_writer(&w->pr, &w->h->journal, "struct journal");
	return 0;
}

int pwrite_sync(struct mmapd_pwriter *w, const void *dst, size_t len)
{
	return pregion_sync_other(&w->pr, w->owner, pwrite_offset(w, dst, len), len);
}

MMAPD_EXPORT int mmapd_pwriter_write(struct mmapd_pwriter *w, void *dst, const void *src,
                                     size_t len)
{
	struct pjournal rec;
	int r;

	if (!w || !dst || (!src && len))
		return tbx_error(-EINVAL, "w, dst or src is NULL");
	if ((r = pwrite_prepare(w, dst, len)) < 0 || len == 0 ||
	    (r = pwrite_stage_room(w, len)) < 0)
		return r;
	memmove(pregion_data(&w->pr) + PERSIST_DATA_OFF, src, len);
	pjournal_begin(&rec);
	pjournal_copy(&rec, PERSIST_DATA_OFF,
	              mmapd_region_offset(w->owner) + pwrite_offset(w, dst, len), len);
	return pjournal_commit(&w->pr, &w->h->journal, &rec, PERSIST_DATA_OFF, len);
}
