/* SPDX-License-Identifier: MIT */
/*
 * Region access checks (see access.h). The classes are exclusive as with files: the owner is
 * judged by the owner bits only, even when the group bits would allow more.
 */
#include "access.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "conn.h"

_Static_assert(sizeof(gid_t) == sizeof(uint32_t), "group ids are kept as uint32_t");

void access_from_stat(const struct stat *st, struct access *ret)
{
	ret->uid = (uint32_t)st->st_uid;
	ret->gid = (uint32_t)st->st_gid;
	ret->perm = (unsigned)st->st_mode & ACCESS_PERM_MAX & ~ACCESS_PERM_EXEC;
}

bool access_conn_in_group(const struct conn *c, uint32_t gid)
{
	size_t i;

	if ((uint32_t)c->gid == gid)
		return true;
	for (i = 0; i < c->ngroups; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

int access_check(const struct access *a, const struct conn *c, unsigned want)
{
	unsigned bits;

	if (c->uid == 0)
		return (want & ACCESS_EXEC) && !(a->perm & ACCESS_PERM_EXEC) ? -EACCES : 0;
	if ((uint32_t)c->uid == a->uid)
		bits = a->perm >> 6;
	else if (access_conn_in_group(c, a->gid))
		bits = a->perm >> 3;
	else
		bits = a->perm;
	return (bits & want & 7u) == (want & 7u) ? 0 : -EACCES;
}

const char *access_want_name(unsigned want)
{
	static const char *const names[8] = {
		"use", "execute", "write", "write and execute",
		"read", "read and execute", "read and write", "read, write and execute",
	};

	return names[want & 7u];
}

int access_peer_groups(int fd, uint32_t **ret_groups, size_t *ret_n)
{
	socklen_t len = 32 * sizeof(gid_t);
	gid_t *groups = NULL;
	size_t n;

	*ret_groups = NULL;
	*ret_n = 0;
	for (;;) {
		gid_t *bigger = realloc(groups, len ? len : sizeof(gid_t));

		if (!bigger) {
			free(groups);
			return -ENOMEM;
		}
		groups = bigger;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
			break;
		/* ERANGE tells the size needed in len. */
		if (errno != ERANGE) {
			int r = -errno;

			free(groups);
			return r;
		}
	}
	n = len / sizeof(gid_t);
	if (n == 0) {
		free(groups);
		return 0;
	}
	*ret_groups = (uint32_t *)groups;
	*ret_n = n;
	return 0;
}
