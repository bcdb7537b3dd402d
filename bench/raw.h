/* SPDX-License-Identifier: MIT */
/*
 * Raw connections to a server's Unix socket, without libmmapd: for the cases that drive many
 * connections from one process (the 1-process throughput shape, idle clients), where the
 * library's per-connection threads-and-locks machinery would be what is measured. For mmapd,
 * framing by hand (a 4-byte big-endian length, then the JSON text) and the hello exchange.
 */
#ifndef MMAPD_BENCH_RAW_H
#define MMAPD_BENCH_RAW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A connected, blocking, close-on-exec socket to path, or -errno. */
int raw_connect(const char *path);
/* Sends all len bytes at p: 0, or -EIO. */
int raw_send(int fd, const void *p, size_t len);
/* Writes the frame of the JSON text json into buf: its length, or 0 when it does not fit. */
size_t raw_frame(uint8_t *buf, size_t size, const char *json);
/* Reads one whole mmapd frame (blocking): its length, header included, or -EIO. */
ssize_t raw_read_frame(int fd);
/* Says hello to mmapd on fd as client name and reads the reply: 0 or -EIO. */
int raw_hello(int fd, const char *name);

#endif
