/*
 * mmapd-testclient: a small command-line client over libmmapd that the integration tests exec
 * as a real, separate client process. Each command does one thing and prints what it saw on
 * stdout, one line per fact, so a test can compare output exactly. The daemon is found through
 * $MMAPD_SOCKET (libmmapd's default lookup). Exit status 0 on success, 1 with a sentence on
 * stderr otherwise (a usage error included).
 *
 * Bytes are printed escaped: printable ASCII as itself (backslash doubled), anything else as
 * \xHH, so a line never breaks and zero bytes are visible ("\x00").
 *
 * Commands:
 *   create NAME SIZE [anon] [sparse] [excl]   create (or open) NAME read-write; prints
 *                                             "size=N" with the region's real size
 *   write NAME OFF TEXT                       open rw, memcpy TEXT into the mapping at OFF;
 *                                             prints "ok"
 *   read NAME OFF LEN                         open ro, print LEN bytes at OFF
 *   cow NAME OFF TEXT                         open cow, memcpy TEXT at OFF, print "cow:<bytes>";
 *                                             then open ro in this process, print "ro:<bytes>"
 *   map-ro-writable NAME [ro|cow]             open ro (or cow), print the descriptor's access
 *                                             mode ("accmode=O_RDONLY"), then try
 *                                             mmap(PROT_READ|PROT_WRITE, MAP_SHARED) on it;
 *                                             print "OK" or the errno name (EACCES expected)
 *   hold NAME [ro|rw|cow] [COUNT]             open NAME COUNT times (default 1, ro), print
 *                                             "ready", then sleep until killed
 *   window NAME OFF LEN                       open ro with a window OFF..OFF+LEN, print
 *                                             "offset=N length=N" then the window's bytes
 *   writer NAME                               open rw, print "ready"; then for each stdin line
 *                                             "OFF TEXT" memcpy TEXT at OFF and print "ok";
 *                                             at end of stdin close and exit
 *   watch NAME OFF TEXT TIMEOUT_MS            open ro, print "ready <bytes at OFF>", then,
 *                                             making no library call at all, poll the mapping
 *                                             until it holds TEXT at OFF: print "seen"
 *                                             (exit 1 after TIMEOUT_MS)
 *   hang-mid-request                          raw socket: hello, then half of a request frame;
 *                                             print "ready" and sleep until killed
 *   hang-after-create NAME SIZE               raw socket: hello, then an open/create request
 *                                             without reading its reply; print "ready", sleep
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mmapd.h"

static const char *prog = "mmapd-testclient";

static int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static int fail_lib(const char *what, int err)
{
	return fail("%s: %s (%s)", what, mmapd_strerror(err), mmapd_last_message());
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -EINVAL;
	*ret = v;
	return 0;
}

static void print_bytes(const char *prefix, const unsigned char *p, size_t len)
{
	fputs(prefix, stdout);
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\\')
			fputs("\\\\", stdout);
		else if (p[i] >= 0x20 && p[i] < 0x7f)
			fputc(p[i], stdout);
		else
			printf("\\x%02x", p[i]);
	}
	fputc('\n', stdout);
	fflush(stdout);
}

static void say(const char *line)
{
	puts(line);
	fflush(stdout);
}

static const char *errno_name(int err)
{
	switch (err) {
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case EINVAL: return "EINVAL";
	case EBADF: return "EBADF";
	case ENODEV: return "ENODEV";
	case ENOMEM: return "ENOMEM";
	case ETXTBSY: return "ETXTBSY";
	default: return "E?";
	}
}

static int connect_client(struct mmapd_client **ret)
{
	int r = mmapd_connect(NULL, prog, ret);

	if (r < 0)
		return fail_lib("connect", r);
	return 0;
}

static int open_region(struct mmapd_client *c, const char *name, enum mmapd_mode mode,
                       uint64_t off, uint64_t len, struct mmapd_region **ret)
{
	struct mmapd_open_opts o = { .mode = mode, .offset = off, .length = len };
	int r = mmapd_region_open(c, name, &o, ret);

	if (r < 0)
		return fail_lib(name, r);
	return 0;
}

/* off + len must lie inside the region's window. */
static int check_range(const struct mmapd_region *r, uint64_t off, uint64_t len)
{
	if (off > mmapd_region_length(r) || len > mmapd_region_length(r) - off)
		return fail("%s: %llu+%llu is outside the window of %zu bytes", mmapd_region_name(r),
		            (unsigned long long)off, (unsigned long long)len, mmapd_region_length(r));
	return 0;
}

static int cmd_create(int argc, char **argv)
{
	struct mmapd_client *c;
	struct mmapd_region *r;
	struct mmapd_open_opts o = { .flags = MMAPD_OPEN_CREATE, .mode = MMAPD_MODE_RW };
	int err;

	if (argc < 2 || parse_u64(argv[1], &o.size) < 0)
		return 2;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "anon") == 0)
			o.flags |= MMAPD_OPEN_ANONYMOUS;
		else if (strcmp(argv[i], "sparse") == 0)
			o.flags |= MMAPD_OPEN_SPARSE;
		else if (strcmp(argv[i], "excl") == 0)
			o.flags |= MMAPD_OPEN_EXCL;
		else
			return 2;
	}
	if (connect_client(&c) != 0)
		return 1;
	err = mmapd_region_open(c, argv[0], &o, &r);
	if (err < 0) {
		fail_lib(argv[0], err);
		mmapd_disconnect(c);
		return 1;
	}
	/* The library does not say whether it created; the size it got tells the test enough. */
	printf("size=%llu\n", (unsigned long long)mmapd_region_size(r));
	fflush(stdout);
	mmapd_region_close(r);
	mmapd_disconnect(c);
	return 0;
}

static int cmd_write(int argc, char **argv)
{
	struct mmapd_client *c;
	struct mmapd_region *r;
	uint64_t off;
	size_t len;
	int ret = 1;

	if (argc != 3 || parse_u64(argv[1], &off) < 0)
		return 2;
	len = strlen(argv[2]);
	if (connect_client(&c) != 0)
		return 1;
	if (open_region(c, argv[0], MMAPD_MODE_RW, 0, 0, &r) != 0)
		goto out;
	if (check_range(r, off, len) == 0) {
		/* Straight into the shared pages: the bytes never go through the socket. */
		memcpy((char *)mmapd_region_data(r) + off, argv[2], len);
		say("ok");
		ret = 0;
	}
	mmapd_region_close(r);
out:
	mmapd_disconnect(c);
	return ret;
}

static int cmd_read(int argc, char **argv)
{
	struct mmapd_client *c;
	struct mmapd_region *r;
	uint64_t off, len;
	int ret = 1;

	if (argc != 3 || parse_u64(argv[1], &off) < 0 || parse_u64(argv[2], &len) < 0)
		return 2;
	if (connect_client(&c) != 0)
		return 1;
	if (open_region(c, argv[0], MMAPD_MODE_RO, 0, 0, &r) != 0)
		goto out;
	if (check_range(r, off, len) == 0) {
		print_bytes("", (const unsigned char *)mmapd_region_data(r) + off, len);
		ret = 0;
	}
	mmapd_region_close(r);
out:
	mmapd_disconnect(c);
	return ret;
}

static int cmd_cow(int argc, char **argv)
{
	struct mmapd_client *c;
	struct mmapd_region *cow, *ro;
	uint64_t off;
	size_t len;
	int ret = 1;

	if (argc != 3 || parse_u64(argv[1], &off) < 0)
		return 2;
	len = strlen(argv[2]);
	if (connect_client(&c) != 0)
		return 1;
	if (open_region(c, argv[0], MMAPD_MODE_COW, 0, 0, &cow) != 0)
		goto out;
	if (check_range(cow, off, len) != 0)
		goto out_cow;
	memcpy((char *)mmapd_region_data(cow) + off, argv[2], len);
	print_bytes("cow:", (const unsigned char *)mmapd_region_data(cow) + off, len);
	/* A second, read-only open in the same process, while the private copy is still mapped. */
	if (open_region(c, argv[0], MMAPD_MODE_RO, 0, 0, &ro) != 0)
		goto out_cow;
	if (check_range(ro, off, len) == 0) {
		print_bytes("ro:", (const unsigned char *)mmapd_region_data(ro) + off, len);
		ret = 0;
	}
	mmapd_region_close(ro);
out_cow:
	mmapd_region_close(cow);
out:
	mmapd_disconnect(c);
	return ret;
}

static int parse_mode(const char *s, enum mmapd_mode *ret)
{
	if (strcmp(s, "ro") == 0)
		*ret = MMAPD_MODE_RO;
	else if (strcmp(s, "rw") == 0)
		*ret = MMAPD_MODE_RW;
	else if (strcmp(s, "cow") == 0)
		*ret = MMAPD_MODE_COW;
	else
		return -EINVAL;
	return 0;
}

static int cmd_map_ro_writable(int argc, char **argv)
{
	struct mmapd_client *c;
	struct mmapd_region *r;
	enum mmapd_mode mode = MMAPD_MODE_RO;
	void *p;
	size_t len;
	int fl, ret = 1;

	if (argc < 1 || argc > 2 || (argc == 2 && parse_mode(argv[1], &mode) < 0))
		return 2;
	if (connect_client(&c) != 0)
		return 1;
	if (open_region(c, argv[0], mode, 0, 0, &r) != 0)
		goto out;
	fl = fcntl(mmapd_region_fd(r), F_GETFL);
	printf("accmode=%s\n", fl < 0 ? "?" : (fl & O_ACCMODE) == O_RDONLY ? "O_RDONLY" :
	       (fl & O_ACCMODE) == O_RDWR ? "O_RDWR" : "O_WRONLY");
	len = (size_t)mmapd_region_size(r);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mmapd_region_fd(r), 0);
	if (p == MAP_FAILED) {
		say(errno_name(errno));
	} else {
		say("OK");
		munmap(p, len);
	}
	ret = 0;
	mmapd_region_close(r);
out:
	mmapd_disconnect(c);
	return ret;
}

static int cmd_hold(int argc, char **argv)
{
	struct mmapd_client *c;
	struct mmapd_region *r;
	enum mmapd_mode mode = MMAPD_MODE_RO;
	uint64_t count = 1;

	if (argc < 1 || argc > 3 || (argc >= 2 && parse_mode(argv[1], &mode) < 0) ||
	    (argc == 3 && (parse_u64(argv[2], &count) < 0 || count == 0)))
		return 2;
	if (connect_client(&c) != 0)
		return 1;
	for (uint64_t i = 0; i < count; i++)
		if (open_region(c, argv[0], mode, 0, 0, &r) != 0)
			return 1;
	say("ready");
	for (;;)
		pause();
}

static int cmd_window(int argc, char **argv)
{
	struct mmapd_client *c;
	struct mmapd_region *r;
	uint64_t off, len;

	if (argc != 3 || parse_u64(argv[1], &off) < 0 || parse_u64(argv[2], &len) < 0)
		return 2;
	if (connect_client(&c) != 0)
		return 1;
	if (open_region(c, argv[0], MMAPD_MODE_RO, off, len, &r) != 0) {
		mmapd_disconnect(c);
		return 1;
	}
	printf("offset=%llu length=%zu\n", (unsigned long long)mmapd_region_offset(r),
	       mmapd_region_length(r));
	print_bytes("", mmapd_region_data(r), mmapd_region_length(r));
	mmapd_region_close(r);
	mmapd_disconnect(c);
	return 0;
}

static int cmd_writer(int argc, char **argv)
{
	struct mmapd_client *c;
	struct mmapd_region *r;
	char line[4096];
	int ret = 0;

	if (argc != 1)
		return 2;
	if (connect_client(&c) != 0)
		return 1;
	if (open_region(c, argv[0], MMAPD_MODE_RW, 0, 0, &r) != 0) {
		mmapd_disconnect(c);
		return 1;
	}
	say("ready");
	while (fgets(line, sizeof(line), stdin) != NULL) {
		char *sp = strchr(line, ' '), *nl = strchr(line, '\n');
		uint64_t off;

		if (nl != NULL)
			*nl = '\0';
		if (sp == NULL) {
			ret = fail("writer: expected \"OFF TEXT\", got \"%s\"", line);
			break;
		}
		*sp = '\0';
		if (parse_u64(line, &off) < 0 || check_range(r, off, strlen(sp + 1)) != 0) {
			ret = fail("writer: bad offset \"%s\"", line);
			break;
		}
		memcpy((char *)mmapd_region_data(r) + off, sp + 1, strlen(sp + 1));
		say("ok");
	}
	mmapd_region_close(r);
	mmapd_disconnect(c);
	return ret;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmd_watch(int argc, char **argv)
{
	struct mmapd_client *c;
	struct mmapd_region *r;
	uint64_t off, timeout;
	size_t len;
	const volatile unsigned char *p;
	int64_t deadline;
	unsigned char *snap;

	if (argc != 4 || parse_u64(argv[1], &off) < 0 || parse_u64(argv[3], &timeout) < 0)
		return 2;
	len = strlen(argv[2]);
	if (connect_client(&c) != 0)
		return 1;
	if (open_region(c, argv[0], MMAPD_MODE_RO, 0, 0, &r) != 0 || check_range(r, off, len) != 0)
		return 1;
	snap = malloc(len ? len : 1);
	if (snap == NULL)
		return fail("out of memory");
	p = (const volatile unsigned char *)mmapd_region_data(r) + off;
	for (size_t i = 0; i < len; i++)
		snap[i] = p[i];
	print_bytes("ready ", snap, len);
	/* From here on no library call is made until the bytes appear: whatever changes the
	 * mapping does so through the shared pages, not through this process's socket. */
	deadline = now_ms() + (int64_t)timeout;
	for (;;) {
		size_t i;

		for (i = 0; i < len; i++)
			if (p[i] != (unsigned char)argv[2][i])
				break;
		if (i == len)
			break;
		if (now_ms() >= deadline) {
			free(snap);
			return fail("watch: the mapping did not show \"%s\" within %llu ms", argv[2],
			            (unsigned long long)timeout);
		}
		usleep(1000);
	}
	free(snap);
	say("seen");
	mmapd_region_close(r);
	mmapd_disconnect(c);
	return 0;
}

/* ---- raw socket commands: a client that misbehaves in the middle of the protocol ---- */

static int raw_connect(void)
{
	const char *path = getenv("MMAPD_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (path == NULL || strlen(path) >= sizeof(sa.sun_path))
		return fail("MMAPD_SOCKET is not set or too long"), -1;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fail("connect %s: %s", path, strerror(errno)), -1;
	return fd;
}

static int raw_send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int raw_send_frame(int fd, const char *json)
{
	size_t len = strlen(json);
	unsigned char hdr[4] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16),
	                         (unsigned char)(len >> 8), (unsigned char)len };
	int r = raw_send_all(fd, hdr, 4);

	return r < 0 ? r : raw_send_all(fd, json, len);
}

/* Reads the hello reply's frame (and checks only that it says ok). */
static int raw_hello(int fd)
{
	unsigned char hdr[4];
	char body[65536];
	size_t got = 0, len;

	if (raw_send_frame(fd, "{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":\"hang\"}") < 0)
		return fail("send hello: %s", strerror(errno));
	while (got < 4) {
		ssize_t n = recv(fd, hdr + got, 4 - got, 0);

		if (n <= 0)
			return fail("hello: no reply");
		got += (size_t)n;
	}
	len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
	if (len == 0 || len >= sizeof(body))
		return fail("hello: bad reply length %zu", len);
	for (got = 0; got < len;) {
		ssize_t n = recv(fd, body + got, len - got, 0);

		if (n <= 0)
			return fail("hello: reply cut short");
		got += (size_t)n;
	}
	body[len] = '\0';
	if (strstr(body, "\"ok\":true") == NULL)
		return fail("hello refused: %s", body);
	return 0;
}

static int cmd_hang_mid_request(int argc, char **argv)
{
	static const char req[] = "{\"id\":2,\"op\":\"status\"}";
	unsigned char hdr[4] = { 0, 0, 0, sizeof(req) - 1 };
	int fd;

	(void)argv;
	if (argc != 0)
		return 2;
	fd = raw_connect();
	if (fd < 0 || raw_hello(fd) != 0)
		return 1;
	/* The header and half of the payload: the daemon holds a partial frame for us. */
	if (raw_send_all(fd, hdr, 4) < 0 || raw_send_all(fd, req, (sizeof(req) - 1) / 2) < 0)
		return fail("send: %s", strerror(errno));
	say("ready");
	for (;;)
		pause();
}

static int cmd_hang_after_create(int argc, char **argv)
{
	char req[512];
	uint64_t size;
	int fd;

	if (argc != 2 || parse_u64(argv[1], &size) < 0 || strlen(argv[0]) > 255)
		return 2;
	fd = raw_connect();
	if (fd < 0 || raw_hello(fd) != 0)
		return 1;
	snprintf(req, sizeof(req),
	         "{\"id\":2,\"op\":\"open\",\"name\":\"%s\",\"mode\":\"rw\",\"create\":true,"
	         "\"size\":%llu}", argv[0], (unsigned long long)size);
	if (raw_send_frame(fd, req) < 0)
		return fail("send: %s", strerror(errno));
	say("ready");
	for (;;)
		pause();
}

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
};

static const struct command commands[] = {
	{ "create", cmd_create },
	{ "write", cmd_write },
	{ "read", cmd_read },
	{ "cow", cmd_cow },
	{ "map-ro-writable", cmd_map_ro_writable },
	{ "hold", cmd_hold },
	{ "window", cmd_window },
	{ "writer", cmd_writer },
	{ "watch", cmd_watch },
	{ "hang-mid-request", cmd_hang_mid_request },
	{ "hang-after-create", cmd_hang_after_create },
};

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2) {
		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
			if (strcmp(argv[1], commands[i].name) == 0) {
				int r = commands[i].fn(argc - 2, argv + 2);

				if (r == 2) {
					fprintf(stderr, "%s: bad arguments for %s (see the top of "
					        "tests/mmapd-testclient.c)\n", prog, argv[1]);
					r = 1;
				}
				return r;
			}
		}
	}
	fprintf(stderr, "usage: %s COMMAND ARGS... (see the top of tests/mmapd-testclient.c)\n", prog);
	return 1;
}
