/* SPDX-License-Identifier: MIT */
/*
 * The adopt op: a client hands the daemon a descriptor of a regular file it opened itself and
 * gets a grant of a region for that file (docs/protocol.md, "adopt"). The descriptor is the
 * client's proof: it is checked (fstat, its status flags, its file system), never reopened
 * with more access than it has, and no path is ever opened for it. A second adoption of the
 * same inode joins the region the first one made (adopt.h); what each uid may do to the
 * region is the rule of adopt.h. The grant itself is open's (ops_grant).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "adopt.h"
#include "conn.h"
#include "log.h"
#include "msg.h"
#include "name.h"
#include "ops.h"
#include "region.h"
#include "state.h"
#include "vocab.h"

/* The mode of a region adopted without "perm": its adopter's alone, as with its descriptor. */
#define ADOPT_PERM_DEFAULT 0600u

/*
 * File systems never adopted. The kernel's views of its own state (/proc, /sys and the like):
 * their "regular files" are not data, and a root daemon reopening one would read it with its
 * own rights (another process's memory or environment). And FUSE, which any user may mount
 * and serve itself: every open, stat or sync of its files waits for that user's server, so
 * one adopted file could stall the daemon's loop for good.
 */
static const char *const adopt_refused_fs[] = {
	"proc", "sysfs", "debugfs", "tracefs", "securityfs", "configfs", "cgroup", "cgroup2",
	"bpf", "pstore", "efivarfs", "selinuxfs", "smackfs", "binfmt_misc", "fusectl", "devpts",
	"fuse", "fuseblk",
};

/* Whether file system type (as mountinfo names it) is one adopt refuses. */
static bool adopt_fs_refused(const char *type)
{
	size_t i;

	if (strncmp(type, "fuse.", 5) == 0)
		return true;
	for (i = 0; i < sizeof(adopt_refused_fs) / sizeof(adopt_refused_fs[0]); i++)
		if (strcmp(type, adopt_refused_fs[i]) == 0)
			return true;
	return false;
}

/*
 * The type of mount mnt_id in the daemon's mount table (/proc/self/mountinfo: "ID PARENT
 * MAJ:MIN ROOT POINT OPTIONS [TAGS...] - TYPE SOURCE SUPER"), into ret (size bytes). Returns
 * 0, -ENOENT when the table has no such mount (another mount namespace, or one of the kernel's
 * internal mounts: memfds, pipes, sockets), or -errno.
 */
static int adopt_mount_type(uint64_t mnt_id, char *ret, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, *sep;
	size_t cap = 0;
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		if (strtoull(line, NULL, 10) != mnt_id || !(sep = strstr(line, " - ")))
			continue;
		sep += 3;
		sep[strcspn(sep, " \n")] = '\0';
		snprintf(ret, size, "%s", sep);
		r = 0;
		break;
	}
	free(line);
	fclose(f);
	return r;
}

/* The kind of a file that is not regular, for messages. */
static const char *adopt_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFIFO:  return "a FIFO";
	case S_IFSOCK: return "a socket";
	case S_IFCHR:  return "a character device";
	case S_IFBLK:  return "a block device";
	case S_IFDIR:  return "a directory";
	case S_IFLNK:  return "a symbolic link";
	default:       return "not a regular file";
	}
}

/*
 * Checks the descriptor c sent: a regular file on a real file system, not the daemon's own
 * inode, opened for reading (and for writing when mode is rw), within max_region_size.
 * Returns the access it proves, or -1 after answering.
 */
static int adopt_check_fd(struct conn *c, uint64_t id, int fd, enum region_mode mode,
                          struct stat *ret_st)
{
	struct statx sx;
	char type[64];
	unsigned access;
	int flags = fcntl(fd, F_GETFL), r;

	/*
	 * What the kernel knows without asking the file system (AT_STATX_DONT_SYNC: a FUSE server
	 * is not asked), until the mount is known not to be one that may never answer.
	 */
	if (flags < 0 || statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC,
	                       STATX_TYPE | STATX_MNT_ID, &sx) < 0) {
		reply_error(c, id, EBADF, "the descriptor sent cannot be examined: %s", strerror(errno));
		return -1;
	}
	if (flags & O_PATH) {
		reply_error(c, id, EBADF, "an O_PATH descriptor proves no access to its file: open it "
		            "O_RDONLY or O_RDWR");
		return -1;
	}
	if (!S_ISREG(sx.stx_mode)) {
		reply_error(c, id, S_ISDIR(sx.stx_mode) ? EISDIR : ENODEV, "only regular files "
		            "can be adopted: the descriptor sent is %s", adopt_kind(sx.stx_mode));
		return -1;
	}
	r = (sx.stx_mask & STATX_MNT_ID) ? adopt_mount_type(sx.stx_mnt_id, type, sizeof(type))
	                                 : -ENOSYS;
	/*
	 * A memfd lives on the kernel's internal mount, a tmpfs may be another namespace's: both
	 * are shmem, the only files that take seals, and never wait on anyone. Any other mount
	 * the daemon cannot see could be a user's FUSE mount.
	 */
	if (r == -ENOENT && fcntl(fd, F_GET_SEALS) >= 0) {
		snprintf(type, sizeof(type), "shmem");
		r = 0;
	}
	if (r < 0) {
		reply_error(c, id, ENODEV, "the descriptor sent is a file of a mount the daemon "
		            "cannot see (another mount namespace) and not of shmem (tmpfs, memfd), "
		            "which it does not adopt");
		return -1;
	}
	if (adopt_fs_refused(type)) {
		reply_error(c, id, ENODEV, "the descriptor sent is a file of a %s file system, which "
		            "is never adopted (kernel views and FUSE)", type);
		return -1;
	}
	if (fstat(fd, ret_st) < 0) {
		reply_error(c, id, EBADF, "the descriptor sent cannot be examined: %s", strerror(errno));
		return -1;
	}
	/*
	 * The daemon's own inodes (grants, control pages: its uid, no group or other bits) are
	 * shared through its regions; a user other than root and the daemon's holds one only
	 * because the daemon granted it.
	 */
	if (ret_st->st_uid == c->srv->self_uid && !(ret_st->st_mode & 077) &&
	    !budget_uid_exempt(c->srv, (uint32_t)c->uid)) {
		reply_error(c, id, EPERM, "operation not permitted: the descriptor sent is one of the "
		            "daemon's own files (a grant or a control page); open its region by name");
		return -1;
	}
	access = adopt_fd_access(flags);
	if (!(access & ACCESS_READ)) {
		reply_error(c, id, EACCES, "the descriptor sent was opened write-only; a region is "
		            "mapped for reading, so open the file O_RDONLY or O_RDWR");
		return -1;
	}
	if (mode == REGION_MODE_RW && !(access & ACCESS_WRITE)) {
		reply_error(c, id, EACCES, "permission denied: the descriptor sent was opened "
		            "read-only, so it proves no right to an rw grant; open the file O_RDWR");
		return -1;
	}
	if ((uint64_t)ret_st->st_size > c->srv->limits->max_region_size) {
		reply_error(c, id, EFBIG, "the file sent is %" PRIu64 " bytes, above max_region_size "
		            "(%" PRIu64 ")", (uint64_t)ret_st->st_size,
		            c->srv->limits->max_region_size);
		return -1;
	}
	return (int)access;
}

/*
 * Makes the region for the file st describes, adopted by c with fd (consumed) proving access,
 * named name (or a name made of its inode). Returns it referenced, or NULL after answering.
 */
static struct region *adopt_new(struct conn *c, uint64_t id, const char *name, int fd,
                                unsigned access, const struct stat *st)
{
	struct server *srv = c->srv;
	char made[64];
	struct stat other;
	struct region *r;
	bool full;
	int ret;

	if (!name) {
		snprintf(made, sizeof(made), "adopted-%" PRIx64 "-%" PRIx64, (uint64_t)st->st_dev,
		         (uint64_t)st->st_ino);
		name = made;
	}
	if (region_lookup(srv, name) ||
	    fstatat(srv->dir_fd, name, &other, AT_SYMLINK_NOFOLLOW) == 0) {
		close(fd);
		reply_error(c, id, EEXIST, "region '%s' exists already; adopt the file under another "
		            "name", name);
		return NULL;
	}
	r = region_new(srv, name, false, REGION_READY);
	if (!r) {
		close(fd);
		reply_nomem(c, id);
		return NULL;
	}
	/* Nothing of the data directory's metadata applies to it (region_new read it by name). */
	r->flush.policy = (struct policy){ .kind = POLICY_MANUAL };
	r->flush.poisoned = false;
	r->acc = (struct access){ .uid = (uint32_t)c->uid, .gid = (uint32_t)c->gid,
	                          .perm = ADOPT_PERM_DEFAULT };
	ret = adopt_attach(r, st, fd, access, (uint32_t)c->uid, &full);
	if (ret < 0) {
		close(fd);
		region_unref(r);
		if (full)
			reply_budget(c, id, c->budget, BUDGET_FDS, 1);
		else
			reply_nomem(c, id);
		return NULL;
	}
	ret = region_table_add(r, false);
	if (ret < 0) {
		region_unref(r);
		if (ret == -EAGAIN)
			reply_max_regions(c, id);
		else
			reply_nomem(c, id);
		return NULL;
	}
	log_info("client %llu (pid %ld, uid %lu) adopted a file (device %" PRIu64 ", inode %" PRIu64
	         ", %" PRIu64 " bytes, %s) as region '%s'", (unsigned long long)c->serial,
	         (long)c->pid, (unsigned long)c->uid, (uint64_t)st->st_dev, (uint64_t)st->st_ino,
	         (uint64_t)st->st_size, access & ACCESS_WRITE ? "read-write" : "read-only", name);
	return r;
}

/* Joins the region r that adopted the same inode already. Returns 0, or -1 after answering. */
static int adopt_join(struct conn *c, uint64_t id, struct region *r, const char *name, int fd,
                      unsigned access)
{
	int ret;

	if (name && strcmp(name, r->name) != 0) {
		close(fd);
		reply_error(c, id, EEXIST, "this file is adopted already, as region '%s'", r->name);
		return -1;
	}
	ret = adopt_prove(r, (uint32_t)c->uid, access, fd);
	if (ret <= 0)
		close(fd);
	if (ret < 0) {
		reply_nomem(c, id);
		return -1;
	}
	return 0;
}

int ops_adopt(struct conn *c, uint64_t id, cJSON *req)
{
	enum region_mode mode = REGION_MODE_RO;
	const char *name = NULL, *m = NULL;
	struct region *r;
	struct stat st;
	int fd, access, ret;

	ret = conn_frame_fd(c, true, &fd);
	if (ret < 0) {
		reply_error(c, id, E2BIG, "more than one descriptor came with this adopt request: "
		            "the daemon closed them all; send exactly one");
		return OPS_DONE;
	}
	if (ret == 0) {
		reply_error(c, id, EBADF, "adopt needs the descriptor of the file, sent with the "
		            "request's frame (SCM_RIGHTS, with its first byte)");
		return OPS_DONE;
	}
	if (cJSON_GetObjectItemCaseSensitive(req, PROTO_FIELD_NAME) &&
	    !(name = ops_get_name(c, id, req)))
		goto out;
	if (ops_get_string(c, id, req, PROTO_FIELD_MODE, false, &m) < 0)
		goto out;
	if (m) {
		ret = region_mode_parse(m);
		if (ret < 0) {
			reply_error(c, id, EINVAL, "field 'mode' must be \"ro\", \"rw\" or \"cow\"");
			goto out;
		}
		mode = (enum region_mode)ret;
	}
	/* The limits of any grant first: a refused adopt leaves nothing behind. */
	if (ops_admit_grant(c, id, false) < 0)
		goto out;
	access = adopt_check_fd(c, id, fd, mode, &st);
	if (access < 0)
		goto out;
	r = adopt_find(c->srv, st.st_dev, st.st_ino);
	if (r) {
		region_ref(r);
		ret = adopt_join(c, id, r, name, fd, (unsigned)access);
		fd = -1;
		if (ret < 0) {
			ops_put_region(r);
			return OPS_DONE;
		}
	} else {
		r = adopt_new(c, id, name, fd, (unsigned)access, &st);
		fd = -1;
		if (!r)
			return OPS_DONE;
	}
	ops_grant(c, id, r, mode, false, false);
	ops_put_region(r);
	return OPS_DONE;
out:
	close(fd);
	return OPS_DONE;
}
