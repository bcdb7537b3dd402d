/* SPDX-License-Identifier: MIT */
/*
 * Raw connections (see raw.h). Everything blocks: the cases that need more than one request
 * in flight wait on the sockets themselves.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "raw.h"

#define RAW_FRAME_MAX 65536

int raw_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) >= (int)sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

int raw_send(int fd, const void *p, size_t len)
{
	return send(fd, p, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -EIO;
}

size_t raw_frame(uint8_t *buf, size_t size, const char *json)
{
	size_t len = strlen(json);

	if (len + 4 > size)
		return 0;
	buf[0] = (uint8_t)(len >> 24);
	buf[1] = (uint8_t)(len >> 16);
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
	memcpy(buf + 4, json, len);
	return len + 4;
}

ssize_t raw_read_frame(int fd)
{
	static uint8_t body[RAW_FRAME_MAX];
	uint8_t head[4];
	size_t len;

	if (recv(fd, head, sizeof(head), MSG_WAITALL) != sizeof(head))
		return -EIO;
	len = (size_t)head[0] << 24 | (size_t)head[1] << 16 | (size_t)head[2] << 8 | head[3];
	if (len == 0 || len > sizeof(body) || recv(fd, body, len, MSG_WAITALL) != (ssize_t)len)
		return -EIO;
	return (ssize_t)(len + 4);
}

int raw_hello(int fd, const char *name)
{
	char json[256];
	uint8_t frame[sizeof(json) + 4];
	size_t len;

	snprintf(json, sizeof(json), "{\"id\":0,\"op\":\"hello\",\"version\":1,\"client\":\"%s\"}",
	         name);
	len = raw_frame(frame, sizeof(frame), json);
	if (len == 0 || raw_send(fd, frame, len) < 0 || raw_read_frame(fd) < 0)
		return -EIO;
	return 0;
}
