/* SPDX-License-Identifier: MIT */
/*
 * Whole-buffer reads and writes on plain descriptors, for the daemon's small text files: the
 * config file, region metadata and the fdstore's state memfd. Both retry on EINTR; neither
 * opens, seals or closes the descriptor, which stays the caller's.
 */
#ifndef MMAPD_DAEMON_FILEIO_H
#define MMAPD_DAEMON_FILEIO_H

#include <stddef.h>

/*
 * Reads the whole of fd, which must be a regular file of at most max bytes, into a new
 * NUL-terminated buffer: *ret_text (the caller frees it) and its length *ret_len. Returns 0,
 * -EINVAL (not a regular file), -EFBIG (above max), -ENOMEM or another -errno; on failure
 * nothing is stored.
 */
int fileio_read_file(int fd, size_t max, char **ret_text, size_t *ret_len);

/* Writes all len bytes of buf to fd. Returns 0 or -errno. */
int fileio_write_all(int fd, const char *buf, size_t len);

#endif
