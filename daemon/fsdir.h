/* SPDX-License-Identifier: MIT */
/*
 * Where regions are stored: resolving a region name beneath the data directory (openat2 with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), creating a region file atomically through a hidden
 * temporary file, sizing a file, unlinking, scanning for region files, and cleaning up
 * temporary files a crash left behind (anonymous regions' memfds are memfd.c's). Directories
 * are passed as descriptors; nothing here touches the event loop, so the slow functions
 * (fsdir_create_file, fsdir_resize, fsdir_unlink) can run on the thread pool.
 */
#ifndef MMAPD_DAEMON_FSDIR_H
#define MMAPD_DAEMON_FSDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define FSDIR_TMP_PREFIX ".mmapd-tmp-"
#define FSDIR_TMP_NAME_MAX 64

/*
 * Opens name (one component) beneath dirfd with flags (O_CLOEXEC and O_NOFOLLOW are added),
 * refusing symlinks anywhere. Returns the fd, or -errno (-ELOOP for a symlink).
 */
int fsdir_open_beneath(int dirfd, const char *name, int flags);

/*
 * Looks up the region file name: stores its stat in *ret_st and, if ret_fd is not NULL, an
 * O_PATH descriptor of it (the caller closes it). Returns 0, -ENOENT, -ELOOP (a symlink),
 * -EINVAL (not a regular file), or another -errno.
 */
int fsdir_lookup(int dirfd, const char *name, struct stat *ret_st, int *ret_fd);

/*
 * Opens a new open file description of the file behind fd (any kind, O_PATH included)
 * through /proc/self/fd, with flags | O_CLOEXEC. Never shares the description, unlike dup.
 * Returns the new fd or -errno.
 */
int fsdir_reopen(int fd, int flags);

/*
 * The mode of every region file the daemon grants, owned by the daemon's user: whoever holds
 * a descriptor of it can reopen it through /proc/<pid>/fd with whatever access the inode's
 * owner and mode allow, so only the daemon's user (and root) may have any.
 */
#define FSDIR_FILE_MODE 0600

/*
 * Makes the file behind fd (st: its stat) owned by the daemon's effective uid and gid (when
 * another uid owns it) with mode FSDIR_FILE_MODE. Returns 0 or -errno (-EPERM when the daemon
 * may not chown or chmod it, -EROFS on a read-only file system).
 */
int fsdir_make_private(int fd, const struct stat *st);

/* Writes ".mmapd-tmp-<pid>-<counter>" into buf (FSDIR_TMP_NAME_MAX bytes). */
void fsdir_tmp_name(char *buf, unsigned long counter);

/*
 * Creates the region file name of size bytes: a temporary file tmpname is created
 * (exclusive, FSDIR_FILE_MODE whatever the umask), sized (fallocate, or ftruncate when sparse or when the file system cannot
 * fallocate: then *ret_fell_back is set), flushed, renamed to name without replacing
 * anything, and the directory is flushed. On failure nothing is left behind. Returns the
 * O_RDWR descriptor of the new file, or -errno (-EEXIST if name appeared meanwhile).
 * Blocks on disk: run it on the thread pool.
 */
int fsdir_create_file(int dirfd, const char *tmpname, const char *name, uint64_t size,
                      bool sparse, bool *ret_fell_back);

/*
 * Reserves the first size bytes of the file behind fd with fallocate(2) (growing it).
 * Returns 0 or -errno (-EOPNOTSUPP where the file system cannot reserve). Blocks on disk:
 * run it on the thread pool.
 */
int fsdir_reserve(int fd, uint64_t size);

/*
 * Grows the file behind fd (no larger than size) to size bytes: fallocate reserves the
 * blocks up to size unless sparse; ftruncate sizes it when sparse or when the file system
 * cannot reserve blocks (then *ret_fell_back is set). Returns 0 or -errno. Blocks on disk:
 * run it on the thread pool.
 */
int fsdir_resize(int fd, uint64_t size, bool sparse, bool *ret_fell_back);

/* Unlinks name and flushes the directory. Returns 0 or -errno. Run it on the thread pool. */
int fsdir_unlink(int dirfd, const char *name);

/*
 * Calls cb for every entry of the directory that is a valid region name and a regular file
 * (symlinks and everything hidden are skipped). A negative return from cb stops the scan
 * and is returned. Returns 0 or -errno.
 */
int fsdir_scan(int dirfd, int (*cb)(void *userdata, const char *name), void *userdata);

/* Removes every temporary file a previous run left behind. Returns how many, or -errno. */
int fsdir_clean_stale(int dirfd);

#endif
