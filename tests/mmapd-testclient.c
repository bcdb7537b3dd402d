/* SPDX-License-Identifier: MIT */
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
 *   session [CLIENT_NAME]                     one libmmapd connection driven line by line from
 *                                             stdin (see "Sessions" below)
 *
 * Sessions. `session` connects (hello name CLIENT_NAME, default "mmapd-testclient"), prints
 * "= ready pid=PID" and then reads one command per stdin line. Every command prints exactly one
 * result line, "= ok[ DETAILS]" or "= err ENAME MESSAGE" (ENAME: the errno's name, MESSAGE:
 * mmapd_last_message()). Events are printed as "! TYPE REGION FIELDS" lines (formats in
 * print_event()); they may come between result lines, never inside one. Unless the session is
 * deaf, the main loop polls mmapd_client_fd() and calls mmapd_client_dispatch(client, 0) whenever it is
 * readable and after every command; a deaf session makes no library call of its own, so it
 * holds its grants without ever reading the socket (a mapper that does not acknowledge).
 * Regions opened in a session are numbered from 0 in open order (IDX below).
 *
 *   open NAME ro|rw|cow [create=SIZE] [excl] [anon] [sparse] [temporary] [truncate]
 *        [reserve=N] [off=N] [len=N]
 *        [policy=KIND[:VALUE]]               ok r=IDX ptr=0xADDR len=N size=N gen=N
 *   close IDX                                 mmapd_region_close
 *   ptr IDX                                   ok ptr=0xADDR len=N gen=N
 *   write IDX OFF TEXT                        memcpy TEXT into the mapping at OFF
 *   read IDX OFF LEN                          ok <bytes, escaped>
 *   touch IDX                                 read one byte of every page of the window
 *   touch-loop on|off                         between commands, touch every window (up to what
 *                                             a shrink left accessible) once per millisecond;
 *                                             "off" prints ok touches=N
 *   u64 IDX OFF                               ok value=N (the 8 bytes at OFF, host order)
 *   addloop NAME IDX OFF COUNT [whole] [noyield]   COUNT times: exclusive lock of NAME
 *                                             OFF..OFF+8 (whole: of all of it, the control
 *                                             page's fast path), a deliberately racy
 *                                             read-yield-write +1 of the u64 at OFF of region
 *                                             IDX (noyield: without the yield), unlock
 *   lock NAME OFF LEN shared|exclusive [nowait] [timeout=MS]   ok lock=ID
 *   unlock ID
 *   resize NAME SIZE [sparse]
 *   subscribe NAME                            ok seq=N
 *   subscribe-page NAME                       mmapd_subscribe_page: ok seq=N
 *   unsubscribe NAME
 *   changed NAME OFF LEN                      ok seq=N
 *   flush NAME
 *   policy NAME KIND[:VALUE]                  KIND manual|always|every-bytes|every-writes|interval
 *   clear-error NAME
 *   stat NAME                                 ok size=N gen=N poisoned=0|1 seq=N policy=K:V
 *                                             locks=N grants=N
 *   times NAME                                ok mtime=N ctime=N (mmapd_stat, microseconds)
 *   rename NAME TO [replace]                  mmapd_rename
 *   copy NAME TO [replace]                    mmapd_copy: ok method=reflink|copy_file_range|bytes
 *   name IDX                                  ok name=<mmapd_region_name>
 *   truncate-on-close IDX SIZE                mmapd_region_truncate_on_close
 *   ping
 *   dispatch MS                               mmapd_client_dispatch(client, MS) once: ok n=N
 *   deaf | hear                               stop / start reading the socket between commands
 *   count NAME                                from now on count (not print) NAME's changed and
 *                                             overflow events, checking their order
 *   count-wait NAME SEQ TIMEOUT_MS            dispatch until a counted changed event reached
 *                                             SEQ: ok events=N changes=N coalesced=N
 *                                             overflow=N bad=N last=SEQ, and with bad > 0
 *                                             firstbad=E,E,... (the first bad event, last,
 *                                             after the ones before it: Cfirst-seq, Oseq,
 *                                             Sseq where counting started)
 *   changeloop NAME COUNT                     COUNT reports of a 1-byte change of NAME (at
 *                                             i % 64): ok first=SEQ last=SEQ
 *   wait-changed IDX AFTER TIMEOUT_MS         mmapd_region_wait_changed: ok seq=N
 *   read-change IDX SEQ                       mmapd_region_read_change: ok seq=N off=N len=N
 *                                             pid=N
 *   readloop IDX AFTER UNTIL TIMEOUT_MS [pid=P] [slow=US]   read every change AFTER+1..UNTIL
 *                                             from the control page (waiting, sleeping US
 *                                             after each read): ok delivered=N lost=N bad=N
 *                                             (bad: a wrong seq, or a pid other than P)
 *   exit                                      close everything, exit 0
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
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
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = mode, .offset = off, .length = len);
	int r = mmapd_region_open(c, name, &o, ret);

	if (r < 0)
		return fail_lib(name, r);
	return 0;
}

/*
 * Connects and opens name in mode (window off+len, 0+0 for all of it) into *ret_c and *ret_r.
 * On failure it has said why, leaves nothing open and returns 1.
 */
static int connect_open(const char *name, enum mmapd_mode mode, uint64_t off, uint64_t len,
                        struct mmapd_client **ret_c, struct mmapd_region **ret_r)
{
	if (connect_client(ret_c) != 0)
		return 1;
	if (open_region(*ret_c, name, mode, off, len, ret_r) != 0) {
		mmapd_disconnect(*ret_c);
		return 1;
	}
	return 0;
}

/* Undoes connect_open(): closes r, then disconnects c. */
static void close_disconnect(struct mmapd_client *c, struct mmapd_region *r)
{
	mmapd_region_close(r);
	mmapd_disconnect(c);
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
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE, .mode = MMAPD_MODE_RW);
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
	if (connect_open(argv[0], MMAPD_MODE_RW, 0, 0, &c, &r) != 0)
		return 1;
	if (check_range(r, off, len) == 0) {
		/* Straight into the shared pages: the bytes never go through the socket. */
		memcpy((char *)mmapd_region_data(r) + off, argv[2], len);
		say("ok");
		ret = 0;
	}
	close_disconnect(c, r);
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
	if (connect_open(argv[0], MMAPD_MODE_RO, 0, 0, &c, &r) != 0)
		return 1;
	if (check_range(r, off, len) == 0) {
		print_bytes("", (const unsigned char *)mmapd_region_data(r) + off, len);
		ret = 0;
	}
	close_disconnect(c, r);
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
	int fl;

	if (argc < 1 || argc > 2 || (argc == 2 && parse_mode(argv[1], &mode) < 0))
		return 2;
	if (connect_open(argv[0], mode, 0, 0, &c, &r) != 0)
		return 1;
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
	close_disconnect(c, r);
	return 0;
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
	if (connect_open(argv[0], MMAPD_MODE_RO, off, len, &c, &r) != 0)
		return 1;
	printf("offset=%llu length=%zu\n", (unsigned long long)mmapd_region_offset(r),
	       mmapd_region_length(r));
	print_bytes("", mmapd_region_data(r), mmapd_region_length(r));
	close_disconnect(c, r);
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
	if (connect_open(argv[0], MMAPD_MODE_RW, 0, 0, &c, &r) != 0)
		return 1;
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
	close_disconnect(c, r);
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
	if (connect_open(argv[0], MMAPD_MODE_RO, 0, 0, &c, &r) != 0 || check_range(r, off, len) != 0)
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
	close_disconnect(c, r);
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

/* ---- sessions: one libmmapd connection driven from stdin (see the top of the file) ---- */

#define SESS_MAX_REGIONS 64
#define SESS_MAX_TOKENS 16

struct sess_region {
	struct mmapd_region *r;   /* NULL once closed */
	size_t limit;             /* bytes of the window that may be touched now */
};

#define SESS_COUNT_RECENT 6         /* events kept to say what led to the first bad one */
#define SESS_COUNT_EVENT  48        /* "C<first>-<seq>," at most */

/* The changed/overflow events of one region, counted instead of printed. */
struct sess_count {
	bool on;
	char name[MMAPD_NAME_MAX + 1];
	uint64_t events, changes, coalesced, overflow, bad, last;
	char recent[SESS_COUNT_RECENT][SESS_COUNT_EVENT];   /* a ring, oldest at nrecent */
	unsigned nrecent;
	char firstbad[SESS_COUNT_RECENT * SESS_COUNT_EVENT];
};

struct session {
	struct mmapd_client *c;
	struct sess_region regions[SESS_MAX_REGIONS];
	size_t nregions;
	bool deaf;
	bool touching;
	uint64_t touches;
	int dispatch_err;         /* the last error of an automatic dispatch, printed once */
	struct sess_count count;
};

static const char *ename(int err)
{
	const char *n = strerrorname_np(err < 0 ? -err : err);

	return n != NULL ? n : "E?";
}

static const char *policy_name(enum mmapd_policy_kind k)
{
	switch (k) {
	case MMAPD_POLICY_MANUAL: return "manual";
	case MMAPD_POLICY_ALWAYS: return "always";
	case MMAPD_POLICY_EVERY_BYTES: return "every-bytes";
	case MMAPD_POLICY_EVERY_WRITES: return "every-writes";
	case MMAPD_POLICY_INTERVAL: return "interval";
	default: return "?"; /* a kind this program does not know, e.g. from a newer library */
	}
}

/* KIND or KIND:VALUE */
static int parse_policy(const char *s, struct mmapd_policy *ret)
{
	static const enum mmapd_policy_kind kinds[] = {
		MMAPD_POLICY_MANUAL, MMAPD_POLICY_ALWAYS, MMAPD_POLICY_EVERY_BYTES,
		MMAPD_POLICY_EVERY_WRITES, MMAPD_POLICY_INTERVAL,
	};
	const char *colon = strchr(s, ':');
	size_t klen = colon ? (size_t)(colon - s) : strlen(s);

	ret->value = 0;
	if (colon != NULL && parse_u64(colon + 1, &ret->value) < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const char *n = policy_name(kinds[i]);

		if (strlen(n) == klen && strncmp(s, n, klen) == 0) {
			ret->kind = kinds[i];
			return 0;
		}
	}
	return -EINVAL;
}

static void res_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void res_ok(const char *fmt, ...)
{
	va_list ap;

	fputs("= ok", stdout);
	if (fmt != NULL && fmt[0] != '\0') {
		fputc(' ', stdout);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	fputc('\n', stdout);
	fflush(stdout);
}

static void res_err(int err)
{
	const char *m = mmapd_last_message();

	printf("= err %s", ename(err));
	/* The message stays on one line whatever it says. */
	fputc(' ', stdout);
	for (; *m != '\0'; m++)
		fputc(*m == '\n' ? ' ' : *m, stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

/* The answer to a command that has nothing to say but whether it worked: err < 0 or ok. */
static void res_done(int err)
{
	if (err < 0)
		res_err(err);
	else
		res_ok(NULL);
}

static void res_usage(const char *cmd)
{
	printf("= err EINVAL bad arguments for %s\n", cmd);
	fflush(stdout);
}

/* Every open window of region name. */
#define SESS_FOREACH_NAMED(s, name, sr)                                                         \
	for (struct sess_region *sr = (s)->regions; sr < (s)->regions + (s)->nregions; sr++)    \
		if (sr->r != NULL && (name) != NULL &&                                          \
		    strcmp(mmapd_region_name(sr->r), (name)) == 0)

static bool sess_counting(const struct session *s, const char *region)
{
	return s->count.on && region != NULL && strcmp(region, s->count.name) == 0;
}

/* Keeps a counted event; the first bad one is kept with the events before it. */
static void sess_count_note(struct sess_count *k, const struct mmapd_event *ev, bool bad)
{
	char *e = k->recent[k->nrecent++ % SESS_COUNT_RECENT];

	if (ev->type == MMAPD_EVENT_CHANGED)
		snprintf(e, SESS_COUNT_EVENT, "C%llu-%llu", (unsigned long long)ev->first_seq,
		         (unsigned long long)ev->seq);
	else
		snprintf(e, SESS_COUNT_EVENT, "O%llu", (unsigned long long)ev->seq);
	if (!bad || k->bad++ > 0)
		return;
	for (unsigned i = 0; i < SESS_COUNT_RECENT; i++) {
		const char *r = k->recent[(k->nrecent + i) % SESS_COUNT_RECENT];
		size_t len = strlen(k->firstbad);

		if (*r)
			snprintf(k->firstbad + len, sizeof(k->firstbad) - len, "%s%s", len ? "," : "", r);
	}
}

static void sess_event(struct mmapd_client *c, const struct mmapd_event *ev, void *userdata)
{
	struct session *s = userdata;
	const char *rn = ev->region != NULL ? ev->region : "-";

	(void)c;
	switch (ev->type) {
	case MMAPD_EVENT_CHANGED:
		if (sess_counting(s, ev->region)) {
			s->count.events++;
			sess_count_note(&s->count, ev, ev->first_seq != s->count.last + 1 ||
			                               ev->seq < ev->first_seq);
			if (ev->seq != ev->first_seq)
				s->count.coalesced++;
			if (ev->seq >= ev->first_seq)
				s->count.changes += ev->seq - ev->first_seq + 1;
			s->count.last = ev->seq;
			return;
		}
		printf("! changed %s seq=%llu first=%llu ranges=", rn, (unsigned long long)ev->seq,
		       (unsigned long long)ev->first_seq);
		if (ev->nranges == 0)
			fputs("none", stdout);
		for (size_t i = 0; i < ev->nranges; i++)
			printf("%s%llu+%llu", i ? "," : "", (unsigned long long)ev->ranges[i].offset,
			       (unsigned long long)ev->ranges[i].length);
		if (ev->writer_client != NULL)
			printf(" writer=%s/%lld\n", ev->writer_client, (long long)ev->writer_pid);
		else if (ev->writer_pid >= 0)
			printf(" writer=?/%lld\n", (long long)ev->writer_pid);
		else
			printf(" writer=-\n");
		break;
	case MMAPD_EVENT_OVERFLOW:
		if (sess_counting(s, ev->region)) {
			s->count.overflow++;
			sess_count_note(&s->count, ev, false);
			s->count.last = ev->seq;
			return;
		}
		printf("! overflow %s seq=%llu\n", rn, (unsigned long long)ev->seq);
		break;
	case MMAPD_EVENT_RESIZED:
		SESS_FOREACH_NAMED(s, ev->region, sr)
			sr->limit = mmapd_region_length(sr->r);
		printf("! resized %s size=%llu old=%llu gen=%llu external=%d\n", rn,
		       (unsigned long long)ev->size, (unsigned long long)ev->old_size,
		       (unsigned long long)ev->generation, ev->external ? 1 : 0);
		break;
	case MMAPD_EVENT_SHRINKING:
		/* The library has already made the tail inaccessible: stop touching it. */
		SESS_FOREACH_NAMED(s, ev->region, sr) {
			uint64_t off = mmapd_region_offset(sr->r);
			uint64_t keep = ev->size > off ? ev->size - off : 0;

			if (keep < sr->limit)
				sr->limit = (size_t)keep;
		}
		printf("! shrinking %s size=%llu gen=%llu\n", rn, (unsigned long long)ev->size,
		       (unsigned long long)ev->generation);
		break;
	case MMAPD_EVENT_SHRINK_CANCELLED:
		SESS_FOREACH_NAMED(s, ev->region, sr)
			sr->limit = mmapd_region_length(sr->r);
		printf("! shrink-cancelled %s\n", rn);
		break;
	case MMAPD_EVENT_POLICY:
		printf("! policy %s %s:%llu\n", rn, policy_name(ev->policy.kind),
		       (unsigned long long)ev->policy.value);
		break;
	case MMAPD_EVENT_FLUSHED:
		printf("! flushed %s seq=%llu\n", rn, (unsigned long long)ev->seq);
		break;
	case MMAPD_EVENT_FLUSH_FAILED:
		printf("! flush-failed %s error=%s\n", rn, ename(ev->error));
		break;
	case MMAPD_EVENT_DELETED:
		printf("! deleted %s\n", rn);
		break;
	case MMAPD_EVENT_UNLOCKED:
		printf("! unlocked %s off=%llu len=%llu\n", rn, (unsigned long long)ev->offset,
		       (unsigned long long)ev->length);
		break;
	case MMAPD_EVENT_RECONNECTED:
		printf("! reconnected\n");
		break;
	case MMAPD_EVENT_LOCKS_LOST:
		printf("! locks-lost n=%zu\n", ev->nlocks);
		break;
	case MMAPD_EVENT_RENAMED:
		printf("! renamed %s to=%s\n", rn, ev->to);
		break;
	case MMAPD_EVENT_RELEASE_FAILED:
		printf("! release-failed %s grant=%llu error=%s\n", rn, (unsigned long long)ev->seq,
		       ename(ev->error));
		break;
	default:
		printf("! unknown %s type=%d\n", rn, (int)ev->type);
		break;
	}
	fflush(stdout);
}

/* Reads one byte of every page of every window, up to what may be touched now. */
static void sess_touch_all(struct session *s)
{
	for (size_t i = 0; i < s->nregions; i++) {
		const volatile unsigned char *p;
		unsigned sum = 0;

		if (s->regions[i].r == NULL)
			continue;
		p = mmapd_region_data(s->regions[i].r);
		for (size_t off = 0; off < s->regions[i].limit; off += 4096)
			sum += p[off];
		(void)sum;
	}
	s->touches++;
}

static void sess_dispatch_now(struct session *s)
{
	int r;

	if (s->deaf)
		return;
	r = mmapd_client_dispatch(s->c, 0);
	if (r < 0) {
		if (r != s->dispatch_err) {
			printf("! dispatch-error %s\n", ename(r));
			fflush(stdout);
		}
		s->dispatch_err = r;
		usleep(10000);
	} else {
		s->dispatch_err = 0;
	}
}

static struct sess_region *sess_region_arg(struct session *s, const char *arg)
{
	uint64_t i;

	if (parse_u64(arg, &i) < 0 || i >= s->nregions || s->regions[i].r == NULL)
		return NULL;
	return &s->regions[i];
}

static void sess_open(struct session *s, int n, char **t)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RO);
	struct mmapd_policy pol;
	struct mmapd_region *r;
	int err;

	if (n < 3 || parse_mode(t[2], &o.mode) < 0 || s->nregions == SESS_MAX_REGIONS)
		{ res_usage(t[0]); return; }
	for (int i = 3; i < n; i++) {
		if (strncmp(t[i], "create=", 7) == 0 && parse_u64(t[i] + 7, &o.size) == 0)
			o.flags |= MMAPD_OPEN_CREATE;
		else if (strcmp(t[i], "excl") == 0)
			o.flags |= MMAPD_OPEN_EXCL;
		else if (strcmp(t[i], "anon") == 0)
			o.flags |= MMAPD_OPEN_ANONYMOUS;
		else if (strcmp(t[i], "sparse") == 0)
			o.flags |= MMAPD_OPEN_SPARSE;
		else if (strcmp(t[i], "temporary") == 0)
			o.flags |= MMAPD_OPEN_TEMPORARY;
		else if (strcmp(t[i], "truncate") == 0)
			o.flags |= MMAPD_OPEN_TRUNCATE;
		else if (strncmp(t[i], "reserve=", 8) == 0 && parse_u64(t[i] + 8, &o.reserve) == 0)
			;
		else if (strncmp(t[i], "off=", 4) == 0 && parse_u64(t[i] + 4, &o.offset) == 0)
			;
		else if (strncmp(t[i], "len=", 4) == 0 && parse_u64(t[i] + 4, &o.length) == 0)
			;
		else if (strncmp(t[i], "policy=", 7) == 0 && parse_policy(t[i] + 7, &pol) == 0)
			o.policy = &pol;
		else
			{ res_usage(t[0]); return; }
	}
	err = mmapd_region_open(s->c, t[1], &o, &r);
	if (err < 0)
		{ res_err(err); return; }
	s->regions[s->nregions].r = r;
	s->regions[s->nregions].limit = mmapd_region_length(r);
	res_ok("r=%zu ptr=%p len=%zu size=%llu gen=%llu", s->nregions, mmapd_region_data(r),
	       mmapd_region_length(r), (unsigned long long)mmapd_region_size(r),
	       (unsigned long long)mmapd_region_generation(r));
	s->nregions++;
}

/* addloop NAME IDX OFF COUNT [whole] [noyield] */
static void sess_addloop(struct session *s, int n, char **t)
{
	bool whole = false, yield = true;
	struct sess_region *sr;
	uint64_t off, count;

	for (int i = 5; i < n; i++) {
		if (strcmp(t[i], "whole") == 0)
			whole = true;
		else if (strcmp(t[i], "noyield") == 0)
			yield = false;
		else
			n = -1;
	}
	if (n < 5 || (sr = sess_region_arg(s, t[2])) == NULL || parse_u64(t[3], &off) < 0 ||
	    parse_u64(t[4], &count) < 0 || off % 8 != 0 || off + 8 > mmapd_region_length(sr->r))
		{ res_usage(t[0]); return; }
	for (uint64_t i = 0; i < count; i++) {
		volatile uint64_t *p;
		uint64_t lock, v;
		int err = mmapd_lock(s->c, t[1], whole ? 0 : off, whole ? 0 : 8,
		                     MMAPD_LOCK_EXCLUSIVE, -1, &lock);

		if (err < 0)
			{ res_err(err); return; }
		/* Read, give the processor away, write: without the lock, increments get lost. */
		p = (volatile uint64_t *)((char *)mmapd_region_data(sr->r) + off);
		v = *p;
		if (yield)
			sched_yield();
		*p = v + 1;
		err = mmapd_unlock(s->c, lock);
		if (err < 0)
			{ res_err(err); return; }
	}
	res_ok(NULL);
}

/* changeloop NAME COUNT */
static void sess_changeloop(struct session *s, int n, char **t)
{
	uint64_t count, seq = 0, first = 0;

	if (n != 3 || parse_u64(t[2], &count) < 0)
		{ res_usage(t[0]); return; }
	for (uint64_t i = 0; i < count; i++) {
		int err = mmapd_report_changed(s->c, t[1], i % 64, 1, &seq);

		if (err < 0)
			{ res_err(err); return; }
		if (i == 0)
			first = seq;
	}
	res_ok("first=%llu last=%llu", (unsigned long long)first, (unsigned long long)seq);
}

/* readloop IDX AFTER UNTIL TIMEOUT_MS [pid=P] [slow=US] */
static void sess_readloop(struct session *s, int n, char **t)
{
	uint64_t after, until, timeout, pid = 0, slow = 0, delivered = 0, lost = 0, bad = 0;
	struct sess_region *sr;

	for (int i = 5; i < n; i++) {
		if (strncmp(t[i], "pid=", 4) == 0 && parse_u64(t[i] + 4, &pid) == 0)
			continue;
		if (strncmp(t[i], "slow=", 5) == 0 && parse_u64(t[i] + 5, &slow) == 0)
			continue;
		n = -1;
	}
	if (n < 5 || (sr = sess_region_arg(s, t[1])) == NULL || parse_u64(t[2], &after) < 0 ||
	    parse_u64(t[3], &until) < 0 || parse_u64(t[4], &timeout) < 0 || timeout > INT32_MAX)
		{ res_usage(t[0]); return; }
	while (after < until) {
		struct mmapd_change ch;
		uint64_t head;
		int err = mmapd_region_wait_changed(sr->r, after, (int)timeout, &head);

		if (err < 0)
			{ res_err(err); return; }
		while (after < head && after < until) {
			err = mmapd_region_read_change(sr->r, after + 1, &ch);
			if (err == -EAGAIN)
				break;
			after++;
			if (err == -ESTALE) {
				lost++;
				continue;
			}
			if (err < 0)
				{ res_err(err); return; }
			if (ch.seq != after || (pid && (uint64_t)ch.writer_pid != pid))
				bad++;
			delivered++;
			if (slow)
				usleep((useconds_t)slow);
		}
	}
	res_ok("delivered=%llu lost=%llu bad=%llu", (unsigned long long)delivered,
	       (unsigned long long)lost, (unsigned long long)bad);
}

static void sess_lock(struct session *s, int n, char **t)
{
	uint64_t off, len, lock;
	unsigned flags;
	int timeout = -1, err;

	if (n < 5 || parse_u64(t[2], &off) < 0 || parse_u64(t[3], &len) < 0)
		{ res_usage(t[0]); return; }
	if (strcmp(t[4], "exclusive") == 0)
		flags = MMAPD_LOCK_EXCLUSIVE;
	else if (strcmp(t[4], "shared") == 0)
		flags = MMAPD_LOCK_SHARED;
	else
		{ res_usage(t[0]); return; }
	for (int i = 5; i < n; i++) {
		uint64_t ms;

		if (strcmp(t[i], "nowait") == 0)
			flags |= MMAPD_LOCK_NOWAIT;
		else if (strncmp(t[i], "timeout=", 8) == 0 && parse_u64(t[i] + 8, &ms) == 0 &&
		         ms <= INT32_MAX)
			timeout = (int)ms;
		else
			{ res_usage(t[0]); return; }
	}
	err = mmapd_lock(s->c, t[1], off, len, flags, timeout, &lock);
	if (err < 0)
		{ res_err(err); return; }
	res_ok("lock=%llu", (unsigned long long)lock);
}

static void sess_count_wait(struct session *s, int n, char **t)
{
	uint64_t seq, timeout;
	int64_t deadline;

	if (n != 4 || !sess_counting(s, t[1]) || parse_u64(t[2], &seq) < 0 ||
	    parse_u64(t[3], &timeout) < 0)
		{ res_usage(t[0]); return; }
	deadline = now_ms() + (int64_t)timeout;
	while (s->count.last < seq) {
		int64_t left = deadline - now_ms();
		int r;

		if (left <= 0)
			break;
		r = mmapd_client_dispatch(s->c, (int)(left > 1000 ? 1000 : left));
		if (r < 0)
			{ res_err(r); return; }
	}
	res_ok("events=%llu changes=%llu coalesced=%llu overflow=%llu bad=%llu last=%llu%s%s",
	       (unsigned long long)s->count.events, (unsigned long long)s->count.changes,
	       (unsigned long long)s->count.coalesced, (unsigned long long)s->count.overflow,
	       (unsigned long long)s->count.bad, (unsigned long long)s->count.last,
	       s->count.bad ? " firstbad=" : "", s->count.bad ? s->count.firstbad : "");
}

/* Runs one command line; returns false on "exit". */
static bool sess_command(struct session *s, char *line)
{
	char *t[SESS_MAX_TOKENS];
	int n = 0, err;
	struct sess_region *sr;
	uint64_t a, b;

	for (char *save = NULL, *tok = strtok_r(line, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		if (n == SESS_MAX_TOKENS) {
			res_usage("(line)");
			return true;
		}
		t[n++] = tok;
	}
	if (n == 0) {
		res_usage("(empty line)");
		return true;
	}
	if (strcmp(t[0], "exit") == 0)
		return false;
	if (strcmp(t[0], "open") == 0) {
		sess_open(s, n, t);
	} else if (strcmp(t[0], "close") == 0) {
		if (n != 2 || (sr = sess_region_arg(s, t[1])) == NULL)
			{ res_usage(t[0]); return true; }
		mmapd_region_close(sr->r);
		err = 0;
		sr->r = NULL;
		res_done(err);
	} else if (strcmp(t[0], "ptr") == 0) {
		if (n != 2 || (sr = sess_region_arg(s, t[1])) == NULL)
			{ res_usage(t[0]); return true; }
		res_ok("ptr=%p len=%zu gen=%llu", mmapd_region_data(sr->r), mmapd_region_length(sr->r),
		       (unsigned long long)mmapd_region_generation(sr->r));
	} else if (strcmp(t[0], "write") == 0) {
		if (n != 4 || (sr = sess_region_arg(s, t[1])) == NULL || parse_u64(t[2], &a) < 0 ||
		    a > sr->limit || strlen(t[3]) > sr->limit - a)
			{ res_usage(t[0]); return true; }
		memcpy((char *)mmapd_region_data(sr->r) + a, t[3], strlen(t[3]));
		res_ok(NULL);
	} else if (strcmp(t[0], "read") == 0) {
		if (n != 4 || (sr = sess_region_arg(s, t[1])) == NULL || parse_u64(t[2], &a) < 0 ||
		    parse_u64(t[3], &b) < 0 || a > sr->limit || b > sr->limit - a)
			{ res_usage(t[0]); return true; }
		print_bytes("= ok ", (const unsigned char *)mmapd_region_data(sr->r) + a, b);
	} else if (strcmp(t[0], "touch") == 0) {
		const volatile unsigned char *p;
		unsigned sum = 0;

		if (n != 2 || (sr = sess_region_arg(s, t[1])) == NULL)
			{ res_usage(t[0]); return true; }
		p = mmapd_region_data(sr->r);
		for (size_t off = 0; off < sr->limit; off += 4096)
			sum += p[off];
		(void)sum;
		res_ok("pages=%zu", (sr->limit + 4095) / 4096);
	} else if (strcmp(t[0], "touch-loop") == 0) {
		if (n != 2 || (strcmp(t[1], "on") != 0 && strcmp(t[1], "off") != 0))
			{ res_usage(t[0]); return true; }
		s->touching = strcmp(t[1], "on") == 0;
		if (s->touching) {
			s->touches = 0;
			res_ok(NULL);
		} else {
			res_ok("touches=%llu", (unsigned long long)s->touches);
		}
	} else if (strcmp(t[0], "u64") == 0) {
		uint64_t v;

		if (n != 3 || (sr = sess_region_arg(s, t[1])) == NULL || parse_u64(t[2], &a) < 0 ||
		    a > sr->limit || sr->limit - a < 8)
			{ res_usage(t[0]); return true; }
		memcpy(&v, (const char *)mmapd_region_data(sr->r) + a, 8);
		res_ok("value=%llu", (unsigned long long)v);
	} else if (strcmp(t[0], "addloop") == 0) {
		sess_addloop(s, n, t);
	} else if (strcmp(t[0], "lock") == 0) {
		sess_lock(s, n, t);
	} else if (strcmp(t[0], "unlock") == 0) {
		if (n != 2 || parse_u64(t[1], &a) < 0)
			{ res_usage(t[0]); return true; }
		err = mmapd_unlock(s->c, a);
		res_done(err);
	} else if (strcmp(t[0], "resize") == 0) {
		if (n < 3 || n > 4 || parse_u64(t[2], &a) < 0 || (n == 4 && strcmp(t[3], "sparse") != 0))
			{ res_usage(t[0]); return true; }
		err = mmapd_resize(s->c, t[1], a, n == 4 ? MMAPD_RESIZE_SPARSE : 0);
		res_done(err);
	} else if (strcmp(t[0], "subscribe") == 0 || strcmp(t[0], "subscribe-page") == 0) {
		if (n != 2)
			{ res_usage(t[0]); return true; }
		err = strcmp(t[0], "subscribe") == 0 ? mmapd_subscribe(s->c, t[1], &a)
		                                     : mmapd_subscribe_page(s->c, t[1], &a);
		if (err < 0)
			res_err(err);
		else
			res_ok("seq=%llu", (unsigned long long)a);
	} else if (strcmp(t[0], "unsubscribe") == 0) {
		if (n != 2)
			{ res_usage(t[0]); return true; }
		err = mmapd_unsubscribe(s->c, t[1]);
		res_done(err);
	} else if (strcmp(t[0], "changed") == 0) {
		uint64_t seq;

		if (n != 4 || parse_u64(t[2], &a) < 0 || parse_u64(t[3], &b) < 0)
			{ res_usage(t[0]); return true; }
		err = mmapd_report_changed(s->c, t[1], a, b, &seq);
		if (err < 0)
			res_err(err);
		else
			res_ok("seq=%llu", (unsigned long long)seq);
	} else if (strcmp(t[0], "flush") == 0) {
		if (n != 2)
			{ res_usage(t[0]); return true; }
		err = mmapd_flush(s->c, t[1], 0, 0);
		res_done(err);
	} else if (strcmp(t[0], "policy") == 0) {
		struct mmapd_policy pol;

		if (n != 3 || parse_policy(t[2], &pol) < 0)
			{ res_usage(t[0]); return true; }
		err = mmapd_set_policy(s->c, t[1], &pol);
		res_done(err);
	} else if (strcmp(t[0], "clear-error") == 0) {
		if (n != 2)
			{ res_usage(t[0]); return true; }
		err = mmapd_clear_error(s->c, t[1]);
		res_done(err);
	} else if (strcmp(t[0], "stat") == 0) {
		struct mmapd_region_info *info;

		if (n != 2)
			{ res_usage(t[0]); return true; }
		err = mmapd_stat(s->c, t[1], &info);
		if (err < 0)
			{ res_err(err); return true; }
		res_ok("size=%llu gen=%llu poisoned=%d seq=%llu policy=%s:%llu locks=%llu grants=%llu",
		       (unsigned long long)info->size, (unsigned long long)info->generation,
		       info->poisoned ? 1 : 0, (unsigned long long)info->seq,
		       policy_name(info->policy.kind), (unsigned long long)info->policy.value,
		       (unsigned long long)info->locks, (unsigned long long)info->grants);
		mmapd_region_info_free(info);
	} else if (strcmp(t[0], "times") == 0) {
		struct mmapd_region_info *info;

		if (n != 2)
			{ res_usage(t[0]); return true; }
		err = mmapd_stat(s->c, t[1], &info);
		if (err < 0)
			{ res_err(err); return true; }
		res_ok("mtime=%llu ctime=%llu", (unsigned long long)info->mtime_us,
		       (unsigned long long)info->ctime_us);
		mmapd_region_info_free(info);
	} else if (strcmp(t[0], "rename") == 0 || strcmp(t[0], "copy") == 0) {
		enum mmapd_copy_method method;
		static const char *const methods[] = { "reflink", "copy_file_range", "bytes" };
		unsigned flags = n == 4 && strcmp(t[3], "replace") == 0 ? MMAPD_MANAGE_REPLACE : 0;

		if (n < 3 || n > 4 || (n == 4 && !flags))
			{ res_usage(t[0]); return true; }
		if (t[0][0] == 'r') {
			res_done(mmapd_rename(s->c, t[1], t[2], flags));
			return true;
		}
		err = mmapd_copy(s->c, t[1], t[2], flags, &method);
		if (err < 0)
			res_err(err);
		else
			res_ok("method=%s", methods[method]);
	} else if (strcmp(t[0], "truncate-on-close") == 0) {
		if (n != 3 || parse_u64(t[1], &a) < 0 || a >= s->nregions || !s->regions[a].r ||
		    parse_u64(t[2], &b) < 0)
			{ res_usage(t[0]); return true; }
		res_done(mmapd_region_truncate_on_close(s->regions[a].r, b));
	} else if (strcmp(t[0], "name") == 0) {
		if (n != 2 || parse_u64(t[1], &a) < 0 || a >= s->nregions || !s->regions[a].r)
			{ res_usage(t[0]); return true; }
		res_ok("name=%s", mmapd_region_name(s->regions[a].r));
	} else if (strcmp(t[0], "ping") == 0) {
		err = mmapd_ping(s->c);
		res_done(err);
	} else if (strcmp(t[0], "dispatch") == 0) {
		if (n != 2 || parse_u64(t[1], &a) < 0 || a > INT32_MAX)
			{ res_usage(t[0]); return true; }
		err = mmapd_client_dispatch(s->c, (int)a);
		if (err < 0)
			res_err(err);
		else
			res_ok("n=%d", err);
	} else if (strcmp(t[0], "deaf") == 0) {
		s->deaf = true;
		res_ok(NULL);
	} else if (strcmp(t[0], "hear") == 0) {
		s->deaf = false;
		res_ok(NULL);
	} else if (strcmp(t[0], "count") == 0) {
		struct mmapd_region_info *info;

		if (n != 2 || strlen(t[1]) > MMAPD_NAME_MAX)
			{ res_usage(t[0]); return true; }
		err = mmapd_stat(s->c, t[1], &info);
		if (err < 0)
			{ res_err(err); return true; }
		memset(&s->count, 0, sizeof(s->count));
		s->count.on = true;
		strcpy(s->count.name, t[1]);
		s->count.last = info->seq;
		snprintf(s->count.recent[s->count.nrecent++], SESS_COUNT_EVENT, "S%llu",
		         (unsigned long long)info->seq);
		mmapd_region_info_free(info);
		res_ok("seq=%llu", (unsigned long long)s->count.last);
	} else if (strcmp(t[0], "count-wait") == 0) {
		sess_count_wait(s, n, t);
	} else if (strcmp(t[0], "changeloop") == 0) {
		sess_changeloop(s, n, t);
	} else if (strcmp(t[0], "readloop") == 0) {
		sess_readloop(s, n, t);
	} else if (strcmp(t[0], "wait-changed") == 0) {
		if (n != 4 || (sr = sess_region_arg(s, t[1])) == NULL || parse_u64(t[2], &a) < 0 ||
		    parse_u64(t[3], &b) < 0 || b > INT32_MAX)
			{ res_usage(t[0]); return true; }
		err = mmapd_region_wait_changed(sr->r, a, (int)b, &a);
		if (err < 0)
			res_err(err);
		else
			res_ok("seq=%llu", (unsigned long long)a);
	} else if (strcmp(t[0], "read-change") == 0) {
		struct mmapd_change ch;

		if (n != 3 || (sr = sess_region_arg(s, t[1])) == NULL || parse_u64(t[2], &a) < 0)
			{ res_usage(t[0]); return true; }
		err = mmapd_region_read_change(sr->r, a, &ch);
		if (err < 0)
			res_err(err);
		else
			res_ok("seq=%llu off=%llu len=%llu pid=%ld", (unsigned long long)ch.seq,
			       (unsigned long long)ch.offset, (unsigned long long)ch.length,
			       ch.writer_pid);
	} else {
		printf("= err ENOSYS unknown session command %s\n", t[0]);
		fflush(stdout);
	}
	return true;
}

static int cmd_session(int argc, char **argv)
{
	static struct session s;
	char buf[8192];
	size_t len = 0;
	int err;

	if (argc > 1)
		return 2;
	err = mmapd_connect(NULL, argc == 1 ? argv[0] : prog, &s.c);
	if (err < 0) {
		res_err(err);
		return 1;
	}
	mmapd_client_set_event_handler(s.c, sess_event, &s);
	printf("= ready pid=%d\n", (int)getpid());
	fflush(stdout);
	for (;;) {
		struct pollfd pfd[2] = { { .fd = 0, .events = POLLIN }, { .fd = -1 } };
		nfds_t nfd = 1;
		int fd = s.deaf ? -1 : mmapd_client_fd(s.c);
		bool running = true;
		char *nl;

		if (fd >= 0) {
			pfd[1].fd = fd;
			pfd[1].events = POLLIN;
			nfd = 2;
		}
		if (poll(pfd, nfd, s.touching ? 1 : -1) < 0 && errno != EINTR)
			return fail("poll: %s", strerror(errno));
		if (nfd == 2 && pfd[1].revents != 0)
			sess_dispatch_now(&s);
		if (s.touching)
			sess_touch_all(&s);
		if (pfd[0].revents == 0)
			continue;
		{
			ssize_t r = read(0, buf + len, sizeof(buf) - 1 - len);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			len += (size_t)r;
		}
		while (running && (nl = memchr(buf, '\n', len)) != NULL) {
			size_t l = (size_t)(nl - buf);

			*nl = '\0';
			running = sess_command(&s, buf);
			memmove(buf, nl + 1, len - l - 1);
			len -= l + 1;
			sess_dispatch_now(&s);
		}
		if (!running)
			break;
		if (len == sizeof(buf) - 1)
			return fail("session: command line too long");
	}
	for (size_t i = 0; i < s.nregions; i++)
		mmapd_region_close(s.regions[i].r);
	mmapd_disconnect(s.c);
	return 0;
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
	{ "session", cmd_session },
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
