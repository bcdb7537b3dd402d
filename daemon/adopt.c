/* SPDX-License-Identifier: MIT */
/*
 * Adopted regions' inodes, proofs and descriptors (see adopt.h). Only data on the region:
 * region.c calls in here when a region enters or leaves the table and when it is freed, and
 * the adopt op (ops_adopt.c) makes and joins adopted regions; nothing here calls region.c.
 */
#include "adopt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "access.h"
#include "budget.h"
#include "conn.h"
#include "region.h"
#include "state.h"

unsigned adopt_fd_access(int flags)
{
	if (flags & O_PATH)
		return 0;
	switch (flags & O_ACCMODE) {
	case O_RDONLY: return ACCESS_READ;
	case O_WRONLY: return ACCESS_WRITE;
	case O_RDWR:   return ACCESS_READ | ACCESS_WRITE;
	default:       return 0;
	}
}

static uint64_t adopt_hash(dev_t dev, ino_t ino)
{
	return htab_hash_u64((uint64_t)dev * 0x9e3779b97f4a7c15ull ^ (uint64_t)ino);
}

struct region *adopt_find(struct server *srv, dev_t dev, ino_t ino)
{
	struct hnode *node;

	for (node = htab_find_first(&srv->adopted, adopt_hash(dev, ino)); node;
	     node = htab_find_next(node)) {
		struct adopt *a = htab_entry(node, struct adopt, node);

		if (a->dev == dev && a->ino == ino)
			return a->region;
	}
	return NULL;
}

unsigned adopt_proven(const struct region *r, uint32_t uid)
{
	const struct adopt *a = r->adopt;
	size_t i;

	for (i = 0; a && i < a->nproofs; i++)
		if (a->proofs[i].uid == uid)
			return a->proofs[i].access;
	return 0;
}

int adopt_check(const struct region *r, const struct conn *c, unsigned want)
{
	unsigned mine = adopt_proven(r, (uint32_t)c->uid);

	/* Execute is never proven: a descriptor says nothing of consent to run the file. */
	if ((want & ~mine) == 0)
		return 0;
	if (access_check(&r->acc, c, want) == 0 && (want & ~adopt_proven(r, r->acc.uid)) == 0)
		return 0;
	return -EACCES;
}

/* Adds access to uid's proof. Returns 0 or -ENOMEM. */
static int adopt_proof_add(struct adopt *a, uint32_t uid, unsigned access)
{
	struct adopt_proof *more;
	size_t i;

	for (i = 0; i < a->nproofs; i++)
		if (a->proofs[i].uid == uid) {
			a->proofs[i].access |= access;
			return 0;
		}
	more = realloc(a->proofs, (a->nproofs + 1) * sizeof(*more));
	if (!more)
		return -ENOMEM;
	a->proofs = more;
	a->proofs[a->nproofs++] = (struct adopt_proof){ .uid = uid, .access = access };
	return 0;
}

int adopt_attach(struct region *r, const struct stat *st, int fd, unsigned access, uint32_t uid,
                 bool *ret_full)
{
	struct adopt *a = calloc(1, sizeof(*a));
	struct budget *b = budget_ref_uid(r->srv, uid);

	*ret_full = false;
	if (!a || !b || adopt_proof_add(a, uid, access) < 0) {
		if (b)
			budget_unref(b);
		if (a)
			free(a->proofs);
		free(a);
		return -ENOMEM;
	}
	if (budget_charge(b, BUDGET_FDS, 1) < 0) {
		budget_unref(b);
		free(a->proofs);
		free(a);
		*ret_full = true;
		return -EAGAIN;
	}
	a->region = r;
	a->dev = st->st_dev;
	a->ino = st->st_ino;
	a->budget = b;
	a->spare_fd = -1;
	r->adopt = a;
	r->fd = fd;
	r->rdonly = !(access & ACCESS_WRITE);
	r->size = (uint64_t)st->st_size;
	return 0;
}

int adopt_prove(struct region *r, uint32_t uid, unsigned access, int fd)
{
	struct adopt *a = r->adopt;
	struct budget *b;

	if (adopt_proof_add(a, uid, access) < 0)
		return -ENOMEM;
	/* Once: a writable descriptor replaces a read-only one, never the other way. */
	if (!r->rdonly || !(access & ACCESS_WRITE) || a->spare_fd >= 0)
		return 0;
	b = budget_ref_uid(r->srv, uid);
	if (!b)
		return 0;
	budget_force(b, BUDGET_FDS, 1);
	a->spare_fd = r->fd;
	a->spare_budget = a->budget;
	a->budget = b;
	r->fd = fd;
	r->rdonly = false;
	return 1;
}

int adopt_index(struct region *r)
{
	struct adopt *a = r->adopt;
	int ret;

	if (!a || a->indexed)
		return 0;
	ret = htab_insert(&r->srv->adopted, &a->node, adopt_hash(a->dev, a->ino));
	if (ret == 0)
		a->indexed = true;
	return ret;
}

void adopt_unindex(struct region *r)
{
	struct adopt *a = r->adopt;

	if (!a || !a->indexed)
		return;
	htab_remove(&r->srv->adopted, &a->node);
	a->indexed = false;
}

/* Gives back the descriptor charged to *b. */
static void adopt_release(struct budget **b)
{
	if (!*b)
		return;
	budget_release(*b, BUDGET_FDS, 1);
	budget_unref(*b);
	*b = NULL;
}

void adopt_free(struct region *r)
{
	struct adopt *a = r->adopt;

	if (!a)
		return;
	adopt_unindex(r);
	adopt_release(&a->budget);
	adopt_release(&a->spare_budget);
	if (a->spare_fd >= 0)
		close(a->spare_fd);
	free(a->proofs);
	free(a);
	r->adopt = NULL;
}
