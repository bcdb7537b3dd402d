/* SPDX-License-Identifier: MIT */
/*
 * Whole-buffer reads and writes (see fileio.h). The callers open the file and close it; these
 * loops check what a file read is and move the bytes, so that the config reader, the metadata
 * reader and writer and the fdstore agree on how a short read or write and an interrupted
 * call are handled.
 */
#include "fileio.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int fileio_read_file(int fd, size_t max, char **ret_text, size_t *ret_len)
{
	size_t size, len = 0;
	struct stat st;
	char *text;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	size = (size_t)st.st_size;

	text = malloc(size + 1);
	if (!text)
		return -ENOMEM;
	while (len < size) {
		ssize_t n = read(fd, text + len, size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = -errno;

			free(text);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	text[len] = '\0';
	*ret_text = text;
	*ret_len = len;
	return 0;
}

int fileio_write_all(int fd, const char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}
