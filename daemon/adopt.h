/* SPDX-License-Identifier: MIT */
/*
 * Adopted regions: a regular file a client already holds a descriptor of, handed to the daemon
 * with op adopt (ops_adopt.c) and shared from then on like a region of the data directory.
 * This module keeps what makes such a region different: its inode (st_dev, st_ino), by which
 * a second adoption of the same file finds the same region (the server's index `adopted`);
 * the access each uid proved by the descriptors it sent; and the one descriptor the daemon
 * keeps, charged to the budget of the uid that sent it.
 *
 * The access rule (docs/architecture.md, "Adopting a file"): a uid may do want to an adopted
 * region when want is within what a descriptor that uid sent allows, or when the region's
 * owner, group and mode give it want (access.h) and want is within what the descriptors of
 * the region's owner allow. Execute is never proven. Proofs last as long as the region.
 *
 * Nothing of an adopted region is written to the data directory (no metadata file): it lives
 * while anyone holds it and goes with its last holder (region.c, region_check_idle).
 */
#ifndef MMAPD_DAEMON_ADOPT_H
#define MMAPD_DAEMON_ADOPT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "htab.h"

struct budget;
struct conn;
struct region;
struct server;

struct adopt_proof {
	uint32_t uid;
	unsigned access;              /* ACCESS_READ, ACCESS_WRITE (access.h) */
};

struct adopt {
	struct hnode node;            /* in srv->adopted by inode, while the region is in the table */
	bool indexed;
	struct region *region;
	dev_t dev;
	ino_t ino;
	struct budget *budget;        /* charged one descriptor (BUDGET_FDS) for r->fd, referenced */
	int spare_fd;                 /* the read-only descriptor r->fd was before a writable one
	                                 came, or -1: kept, as thread-pool work may still use it */
	struct budget *spare_budget;  /* charged for spare_fd */
	size_t nproofs;
	struct adopt_proof *proofs;
};

/* The access a descriptor's status flags (F_GETFL) give: ACCESS_READ and/or ACCESS_WRITE. */
unsigned adopt_fd_access(int flags);

/* The region in the table that adopted inode (dev, ino), or NULL. */
struct region *adopt_find(struct server *srv, dev_t dev, ino_t ino);

/*
 * Makes r (not yet in the table) the adoption of the file st describes, whose descriptor fd
 * (the daemon's from now on: r->fd) came from uid with access. Charges one descriptor to
 * uid's budget unless force. Returns 0, -EAGAIN with *ret_full (the budget), or -ENOMEM.
 */
int adopt_attach(struct region *r, const struct stat *st, int fd, unsigned access, uint32_t uid,
                 bool *ret_full);

/*
 * Records that uid proved access to r (fd: the descriptor it sent). When fd gives write
 * access and r's own descriptor does not, fd becomes r's descriptor (charged to uid; the old
 * one is kept until r is freed) and 1 is returned; otherwise 0 (the caller keeps fd).
 * -ENOMEM when the proof cannot be recorded.
 */
int adopt_prove(struct region *r, uint32_t uid, unsigned access, int fd);

/* What the descriptors uid sent for r allow (0 when none). */
unsigned adopt_proven(const struct region *r, uint32_t uid);

/* Whether c may do want to adopted region r (the rule above): 0 or -EACCES. */
int adopt_check(const struct region *r, const struct conn *c, unsigned want);

/* Index r (entering the table) or take it out (leaving it). */
int adopt_index(struct region *r);
void adopt_unindex(struct region *r);

/* Frees r->adopt (r is being freed; its descriptor is closed by region.c). */
void adopt_free(struct region *r);

#endif
