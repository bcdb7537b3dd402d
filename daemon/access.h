/* SPDX-License-Identifier: MIT */
/*
 * Access control of regions, in the image of file permissions. Every region has an owner
 * uid, a group and a mode: read and write bits for owner, group and others (0640 and so on),
 * and execute bits that are the consent to executable maps ("exec" of open). A peer is
 * identified by what the kernel said when it connected (SO_PEERCRED, SO_PEERGROUPS): its uid
 * picks the owner class, its primary or any supplementary group the group class, and uid 0
 * passes every check, as root does with files, except that exec needs some execute bit set,
 * as execve(2) does for root.
 */
#ifndef MMAPD_DAEMON_ACCESS_H
#define MMAPD_DAEMON_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct conn;

#define ACCESS_READ  04u
#define ACCESS_WRITE 02u
#define ACCESS_EXEC  01u

#define ACCESS_PERM_DEFAULT 0660u   /* mode of a region created without "perm" */
#define ACCESS_PERM_DEFAULT_EXEC 0770u /* the same, created with "exec" */
#define ACCESS_PERM_MAX     0777u
#define ACCESS_PERM_EXEC    0111u   /* the execute bits of every class */

struct access {
	uint32_t uid;
	uint32_t gid;
	unsigned perm;                /* 0 .. 0777 */
};

/*
 * The owner and mode a file has (for files made without mmapd), without its execute bits:
 * exec consent exists only in mmapd's metadata.
 */
void access_from_stat(const struct stat *st, struct access *ret);

/* True when connection c is in group gid (primary or supplementary). */
bool access_conn_in_group(const struct conn *c, uint32_t gid);

/*
 * Returns 0 when c may do want (ACCESS_READ | ACCESS_WRITE | ACCESS_EXEC bits) under a, or
 * -EACCES. Root may do anything, but exec only when some execute bit is set.
 */
int access_check(const struct access *a, const struct conn *c, unsigned want);

/* "read", "write", "read and execute" and so on, for messages. */
const char *access_want_name(unsigned want);

/*
 * Reads the supplementary groups of the peer of socket fd (SO_PEERGROUPS). Returns 0 with
 * *ret_groups (malloc'd, or NULL when there are none) and *ret_n, or -errno.
 */
int access_peer_groups(int fd, uint32_t **ret_groups, size_t *ret_n);

#endif
