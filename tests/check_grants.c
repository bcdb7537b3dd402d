/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests that a grant never becomes more access than it says (issue 9): a client
 * that is neither root nor the daemon's user holds a descriptor of the daemon's, and tries
 * what the kernel lets any holder try. It reopens the descriptor through /proc/self/fd with
 * O_RDWR (which checks only the inode's owner and mode, not the path nor the grant), and
 * truncates or allocates through it. A read-only or copy-on-write grant must stay read-only
 * however the region was made: anonymous (memfd), created under a loose umask, or a file
 * an operator placed in the data directory with a wide mode. A read-write grant may resize
 * the file it holds, but a size above max_region_size is never adopted: every reply keeps
 * the last size the daemon accepted, and a file region is truncated back to it.
 *
 * The attacker is real: the suite runs as root, the daemon too (except where it runs as
 * nobody to show what it cannot take over), and each attempt is made by a forked child that
 * dropped to uid and gid 65534 and inherited the granted descriptor. Without root those tests
 * are skipped. One more test has libmmapd list what an older daemon reported for such a
 * region (2^62 bytes) from a fake daemon, and checks the list does not fail over it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"
#include "tuning.h"

#define NOBODY 65534u   /* uid and gid of nobody/nogroup on Debian */

#define CFG_OPEN "\"socket_mode\": \"0666\""
#define MAX_SIZE 1048576u   /* max_region_size of the growth test */
#define HUGE_SIZE (1ull << 62)
#define REGION_SIZE 4096u

static const char pattern[] = "bytes nobody may change";

/* Opens region name in mode over c (asserting ok) and returns the granted descriptor. */
static int grants_open(struct test_conn *c, const char *name, const char *mode)
{
	cJSON *reply = test_conn_callf(c, "{'op':'open','name':'%s','mode':'%s'}", name, mode);
	int fd;

	test_assert_ok(reply);
	fd = test_conn_take_fd(c);
	cJSON_Delete(reply);
	return fd;
}

/* Creates region name (anonymous or a file) of REGION_SIZE bytes with mode perm over c,
 * writes the pattern at its start and returns the creator's read-write descriptor. */
static int grants_create(struct test_conn *c, const char *name, bool anonymous, unsigned perm)
{
	cJSON *reply = test_conn_callf(c, "{'op':'open','name':'%s','mode':'rw','create':true,"
	                               "'exclusive':true,'size':%u,'anonymous':%s,'perm':%u}",
	                               name, REGION_SIZE, anonymous ? "true" : "false", perm);
	int fd;

	test_assert_ok(reply);
	fd = test_conn_take_fd(c);
	cJSON_Delete(reply);
	ck_assert_int_eq(pwrite(fd, pattern, sizeof(pattern), 0), (ssize_t)sizeof(pattern));
	return fd;
}

/* Asserts that fd still holds the pattern and REGION_SIZE bytes. */
static void grants_assert_intact(int fd)
{
	char buf[sizeof(pattern)];
	struct stat st;

	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	ck_assert_msg(memcmp(buf, pattern, sizeof(buf)) == 0, "the region's bytes changed");
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, REGION_SIZE);
}

/*
 * Runs fn(fd, arg) in a forked child that became NOBODY (no supplementary groups) and
 * returns what fn returned (its exit status); 99 when the child could not drop root.
 */
static int grants_as_nobody(int (*fn)(int fd, uint64_t arg), int fd, uint64_t arg)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(99);
		_exit(fn(fd, arg));
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "the child died (status %d)", status);
	return WEXITSTATUS(status);
}

/*
 * What a holder of a read-only descriptor tries to make of it. Returns 0 when everything
 * failed as it must, or which attempt succeeded (or failed otherwise than expected).
 */
static int grants_try_write(int fd, uint64_t unused)
{
	char path[32];
	int nfd;

	(void)unused;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, O_RDWR | O_CLOEXEC);
	if (nfd >= 0)
		return 1;
	if (errno != EACCES)
		return 2;
	if (ftruncate(fd, (off_t)HUGE_SIZE) == 0)
		return 3;
	if (fallocate(fd, 0, 0, 1 << 20) == 0)
		return 4;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, REGION_SIZE) == 0)
		return 5;
	return 0;
}

/* What a holder of a read-write descriptor may do: make the file size bytes. */
static int grants_truncate(int fd, uint64_t size)
{
	return ftruncate(fd, (off_t)size) == 0 ? 0 : 10;
}

/* Asserts that the file at dir/name is owned by uid and has mode 0600 on disk. */
static void grants_assert_private(const char *dir, const char *name, uid_t uid)
{
	char path[TEST_PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_msg((st.st_mode & 07777) == 0600 && st.st_uid == uid,
	              "%s is %04o owned by %lu on disk, not 0600 owned by %lu", name,
	              st.st_mode & 07777, (unsigned long)st.st_uid, (unsigned long)uid);
}

/* Places a file of REGION_SIZE bytes holding the pattern, with mode and owner uid:gid, in
 * dir, as an operator would. */
static void grants_place_file(const char *dir, const char *name, unsigned mode, uid_t uid,
                              gid_t gid)
{
	char path[TEST_PATH_MAX + 64];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, REGION_SIZE), 0);
	ck_assert_int_eq(pwrite(fd, pattern, sizeof(pattern), 0), (ssize_t)sizeof(pattern));
	ck_assert_int_eq(fchown(fd, uid, gid), 0);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

/* Connects as NOBODY and says hello. */
/* The region object of name as d's stat reports it: uid, gid, perm and size. */
static void grants_stat(const struct test_daemon *d, const char *name, uint64_t ret[4])
{
	const cJSON *region;
	cJSON *reply = test_daemon_stat(d, name, &region);

	ret[0] = test_json_u64(region, "uid");
	ret[1] = test_json_u64(region, "gid");
	ret[2] = test_json_u64(region, "perm");
	ret[3] = test_json_u64(region, "size");
	cJSON_Delete(reply);
}

static const char *const ro_modes[] = { "ro", "cow" };

START_TEST(test_grants_anonymous_ro_and_cow_cannot_be_reopened_writable)
{
	struct test_daemon d;
	struct test_conn root, nobody;
	int rootfd, fd;

	if (!test_is_root())
		return;
	test_daemon_init(&d, "{" CFG_OPEN "}");
	test_daemon_open_dirs(&d);
	test_daemon_launch(&d);
	test_conn_open_hello(&root, &d);
	rootfd = grants_create(&root, "a", true, 0644);

	test_conn_open_hello_as(&nobody, &d, NOBODY, NOBODY);
	test_reply_error(test_conn_callf(&nobody, "{'op':'open','name':'a','mode':'rw'}"),
	                 "EACCES", EACCES, "permission denied");
	fd = grants_open(&nobody, "a", ro_modes[_i]);
	ck_assert_int_eq(grants_as_nobody(grants_try_write, fd, 0), 0);
	grants_assert_intact(rootfd);

	close(fd);
	close(rootfd);
	test_conn_close(&nobody);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

/*
 * What a holder of a grant may do to its own open file description: status flags, offset and
 * a flock. Returns 0 when all of it worked, or which step failed.
 */
static int grants_own_description(int fd, uint64_t unused)
{
	(void)unused;
	if (fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK) < 0)
		return 1;
	if (lseek(fd, 100, SEEK_SET) != 100)
		return 2;
	return flock(fd, LOCK_EX | LOCK_NB) < 0 ? 3 : 0;
}

/*
 * Two read-only grants of one region are two open file descriptions, never one shared per
 * region and mode (architecture.md, "Descriptors are not shared between grants"): what a
 * hostile holder does to its own (status flags, offset, an exclusive flock, which it keeps
 * while the test holds the descriptor) is not seen through another client's grant.
 */
START_TEST(test_grants_ro_grants_share_no_open_file_description)
{
	struct test_daemon d;
	struct test_conn root, nobody;
	int rootfd, victim, fd;

	if (!test_is_root())
		return;
	test_daemon_init(&d, "{" CFG_OPEN "}");
	test_daemon_open_dirs(&d);
	test_daemon_launch(&d);
	test_conn_open_hello(&root, &d);
	rootfd = grants_create(&root, "s", false, 0644);
	victim = grants_open(&root, "s", "ro");

	test_conn_open_hello_as(&nobody, &d, NOBODY, NOBODY);
	fd = grants_open(&nobody, "s", "ro");
	ck_assert_int_eq(grants_as_nobody(grants_own_description, fd, 0), 0);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & (O_APPEND | O_NONBLOCK), O_APPEND | O_NONBLOCK);

	ck_assert_int_eq(fcntl(victim, F_GETFL) & (O_APPEND | O_NONBLOCK), 0);
	ck_assert_int_eq(lseek(victim, 0, SEEK_CUR), 0);
	ck_assert_int_eq(flock(victim, LOCK_SH | LOCK_NB), -1);
	ck_assert_int_eq(errno, EWOULDBLOCK);

	close(fd);
	close(victim);
	close(rootfd);
	test_conn_close(&nobody);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_grants_file_created_under_umask_002_is_private_on_disk)
{
	struct test_daemon d;
	struct test_conn root, nobody;
	mode_t old;
	int rootfd, fd;

	if (!test_is_root())
		return;
	test_daemon_init(&d, "{" CFG_OPEN "}");
	test_daemon_open_dirs(&d);
	/* The daemon inherits the umask it is started with. */
	old = umask(002);
	test_daemon_launch(&d);
	umask(old);
	test_conn_open_hello(&root, &d);
	rootfd = grants_create(&root, "f", false, 0644);
	grants_assert_private(d.data, "f", geteuid());

	test_conn_open_hello_as(&nobody, &d, NOBODY, NOBODY);
	fd = grants_open(&nobody, "f", "ro");
	ck_assert_int_eq(grants_as_nobody(grants_try_write, fd, 0), 0);
	grants_assert_intact(rootfd);

	close(fd);
	close(rootfd);
	test_conn_close(&nobody);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_grants_placed_0666_file_is_tightened_at_first_open_keeping_its_acl)
{
	struct test_daemon d;
	struct test_conn root, nobody;
	uint64_t before[4], after[4];
	cJSON *reply;
	int fd;

	if (!test_is_root())
		return;
	test_daemon_init(&d, "{" CFG_OPEN "}");
	test_daemon_open_dirs(&d);
	test_daemon_launch(&d);
	grants_place_file(d.data, "p", 0666, 0, 0);
	grants_stat(&d, "p", before);
	ck_assert_uint_eq(before[2], 0666);

	/* The first open takes the file over; once nothing holds it, stat reads the metadata,
	 * which must say what the file's mode said. */
	test_conn_open_hello(&root, &d);
	reply = test_conn_callf(&root, "{'op':'open','name':'p','mode':'ro'}");
	test_assert_ok(reply);
	close(test_conn_take_fd(&root));
	test_reply_ok(test_conn_callf(&root, "{'op':'close','handle':%llu}",
	                              (unsigned long long)test_json_u64(reply, "handle")));
	cJSON_Delete(reply);
	grants_assert_private(d.data, "p", geteuid());
	grants_stat(&d, "p", after);
	ck_assert_msg(memcmp(before, after, sizeof(before)) == 0,
	              "stat says uid %llu gid %llu perm %04llo size %llu after the takeover",
	              (unsigned long long)after[0], (unsigned long long)after[1],
	              (unsigned long long)after[2], (unsigned long long)after[3]);

	/* chmod on the protocol changes the metadata only; the inode stays private. */
	test_reply_ok(test_conn_callf(&root, "{'op':'chmod','name':'p','perm':%d}", 0644));
	grants_stat(&d, "p", after);
	ck_assert_uint_eq(after[2], 0644);
	grants_assert_private(d.data, "p", geteuid());

	test_conn_open_hello_as(&nobody, &d, NOBODY, NOBODY);
	test_reply_error(test_conn_callf(&nobody, "{'op':'open','name':'p','mode':'rw'}"),
	                 "EACCES", EACCES, "permission denied");
	fd = grants_open(&nobody, "p", "ro");
	ck_assert_int_eq(grants_as_nobody(grants_try_write, fd, 0), 0);
	grants_assert_intact(fd);

	close(fd);
	test_conn_close(&nobody);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

/* Asserts that every region of d's list has a size of at most MAX_SIZE, through a raw
 * connection and through libmmapd, and that there are want of them. */
static void grants_assert_list_bounded(const struct test_daemon *d, size_t want)
{
	struct mmapd_region_list *list = NULL;
	struct mmapd_client *client;
	struct test_conn c;
	const cJSON *item;
	size_t count = 0;
	cJSON *reply;

	test_conn_open_hello(&c, d);
	reply = test_conn_callf(&c, "{'op':'list'}");
	test_assert_ok(reply);
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(reply, "regions")) {
		ck_assert_msg(test_json_u64(item, "size") <= MAX_SIZE, "list says %s",
		              test_describe(item));
		count++;
	}
	ck_assert_uint_eq(count, want);
	cJSON_Delete(reply);
	test_conn_close(&c);

	client = test_client_connect(d, "grants");
	ck_assert_int_eq(mmapd_list_regions(client, &list), 0);
	ck_assert_uint_eq(mmapd_region_list_count(list), want);
	for (size_t i = 0; i < want; i++)
		ck_assert_uint_le(mmapd_region_list_at(list, i)->size, MAX_SIZE);
	mmapd_region_list_free(list);
	mmapd_disconnect(client);
}

START_TEST(test_grants_growth_past_max_region_size_is_never_adopted)
{
	struct test_daemon d;
	struct test_conn root, nobody;
	uint64_t info[4];
	int rootafd, rootffd, afd, ffd, fd;
	struct stat st;

	if (!test_is_root())
		return;
	test_daemon_init(&d, "{" CFG_OPEN ", \"max_region_size\": 1048576}");
	test_daemon_open_dirs(&d);
	test_daemon_launch(&d);
	test_conn_open_hello(&root, &d);
	rootafd = grants_create(&root, "a", true, 0666);
	rootffd = grants_create(&root, "f", false, 0666);

	test_conn_open_hello_as(&nobody, &d, NOBODY, NOBODY);
	afd = grants_open(&nobody, "a", "rw");
	ffd = grants_open(&nobody, "f", "rw");
	ck_assert_int_eq(grants_as_nobody(grants_truncate, afd, HUGE_SIZE), 0);
	ck_assert_int_eq(grants_as_nobody(grants_truncate, ffd, 2 * MAX_SIZE), 0);

	grants_assert_list_bounded(&d, 2);
	grants_stat(&d, "a", info);
	ck_assert_uint_eq(info[3], REGION_SIZE);
	grants_stat(&d, "f", info);
	ck_assert_uint_eq(info[3], REGION_SIZE);
	/* The file went back to the last size the daemon accepted. */
	ck_assert_int_eq(fstat(rootffd, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, REGION_SIZE);

	fd = grants_open(&root, "a", "ro");
	close(fd);
	fd = grants_open(&root, "f", "ro");
	close(fd);

	close(afd);
	close(ffd);
	close(rootafd);
	close(rootffd);
	test_conn_close(&nobody);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_grants_daemon_refuses_a_file_it_cannot_take_over)
{
	struct test_daemon d;
	struct test_conn root;
	int fd;

	if (!test_is_root())
		return;
	test_daemon_init(&d, "{" CFG_OPEN "}");
	test_daemon_run_as(&d, NOBODY, NOBODY);
	test_daemon_launch(&d);
	grants_place_file(d.data, "theirs", 0644, 0, 0);
	grants_place_file(d.data, "ours", 0666, NOBODY, NOBODY);

	test_conn_open_hello(&root, &d);
	test_reply_error(test_conn_callf(&root, "{'op':'open','name':'theirs','mode':'ro'}"),
	                 "EPERM", EPERM, "chown it to the daemon's user");
	fd = grants_open(&root, "ours", "ro");
	grants_assert_private(d.data, "ours", NOBODY);
	grants_assert_intact(fd);

	close(fd);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

/*
 * In a forked child: a daemon as older ones were, listening on path, that answers hello and
 * list on one connection, listing a region of 2^62 bytes beside a good one. Exit status 0
 * when the client went away after both.
 */
static int grants_old_daemon(int lfd)
{
	static const char *const replies[] = {
		"{\"id\":%llu,\"ok\":true,\"version\":1}",
		"{\"id\":%llu,\"ok\":true,\"more\":false,\"regions\":["
		"{\"name\":\"a\",\"size\":4611686018427387904,\"anonymous\":true,\"grants\":1,"
		"\"clients\":1},{\"name\":\"b\",\"size\":4096,\"anonymous\":false,"
		"\"grants\":0,\"clients\":0}]}",
	};
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return 1;
	for (size_t i = 0; i < 2; i++) {
		unsigned char hdr[4];
		char req[4096], reply[512], *end;
		unsigned long long id;
		uint32_t len;
		const char *p;

		if (read(fd, hdr, 4) != 4)
			return 2;
		len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
		if (len >= sizeof(req) || read(fd, req, len) != (ssize_t)len)
			return 3;
		req[len] = '\0';
		p = strstr(req, "\"id\":");
		if (!p)
			return 4;
		id = strtoull(p + 5, &end, 10);
		len = (uint32_t)snprintf(reply + 4, sizeof(reply) - 4, replies[i], id);
		reply[0] = (char)(len >> 24);
		reply[1] = (char)(len >> 16);
		reply[2] = (char)(len >> 8);
		reply[3] = (char)len;
		if (write(fd, reply, len + 4) != (ssize_t)len + 4)
			return 5;
	}
	return read(fd, &(char){ 0 }, 1) == 0 ? 0 : 6;
}

/*
 * Starts a fake daemon: a child process serving one connection on a fresh socket with serve
 * (its exit status: 0 when the client did what the test expects), and connects *ret_client
 * to it. Returns the child's pid.
 */
static pid_t grants_fake_daemon(int (*serve)(int lfd), struct mmapd_client **ret_client)
{
	char dir[TEST_PATH_MAX], path[TEST_PATH_MAX + 2];
	struct sockaddr_un addr, *sa = &addr;
	int lfd;
	pid_t pid;

	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	test_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/s", dir);
	ck_assert_uint_lt(strlen(path), sizeof(sa->sun_path));
	memcpy(sa->sun_path, path, strlen(path) + 1);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)sa, sizeof(*sa)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(serve(lfd));
	close(lfd);
	ck_assert_msg(mmapd_connect(sa->sun_path, "grants", ret_client) == 0, "mmapd_connect: %s",
	              mmapd_last_message());
	return pid;
}

START_TEST(test_grants_client_lists_past_a_region_an_older_daemon_reports_at_2_62)
{
	struct mmapd_region_list *list = NULL;
	struct mmapd_client *client = NULL;
	int status;
	pid_t pid;

	pid = grants_fake_daemon(grants_old_daemon, &client);
	ck_assert_msg(mmapd_list_regions(client, &list) == 0, "mmapd_list_regions: %s",
	              mmapd_last_message());
	ck_assert_uint_eq(mmapd_region_list_count(list), 2);
	ck_assert_uint_eq(mmapd_region_list_at(list, 0)->size, HUGE_SIZE);
	ck_assert_uint_eq(mmapd_region_list_at(list, 1)->size, REGION_SIZE);
	ck_assert_ptr_null(mmapd_region_list_at(list, 2));
	mmapd_region_list_free(list);
	mmapd_disconnect(client);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the fake daemon: status %d",
	              status);
}
END_TEST

/* Reads one frame of at most size - 1 bytes into buf (NUL-terminated). Returns 0 or -1. */
static int fake_read_frame(int fd, char *buf, size_t size)
{
	unsigned char hdr[4];
	uint32_t len;

	if (read(fd, hdr, 4) != 4)
		return -1;
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (len >= size || read(fd, buf, len) != (ssize_t)len)
		return -1;
	buf[len] = '\0';
	return 0;
}

/* Sends the frame text, with descriptor fd on its first byte when fd >= 0. Returns 0 or -1. */
static int fake_send_frame(int sock, const char *text, int fd)
{
	char buf[1024], cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	size_t len = strlen(text);
	struct iovec iov = { .iov_base = buf, .iov_len = len + 4 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (len + 4 > sizeof(buf))
		return -1;
	buf[0] = (char)(len >> 24);
	buf[1] = (char)(len >> 16);
	buf[2] = (char)(len >> 8);
	buf[3] = (char)len;
	memcpy(buf + 4, text, len);
	if (fd >= 0) {
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)(len + 4) ? 0 : -1;
}

/*
 * In a forked child: a daemon that refuses to release grants. On one connection it expects
 * hello, open (answered with grant 7 of a 4096-byte memfd), close of handle 7 (quiet:
 * "reply": false, so answered only when it fails) and ping, in that order; it answers the
 * close (refused: ENOENT) only once the ping has come, so a client that waited for that reply
 * before its next request would never get it. Exit status 0 when the client went away after
 * them; the order proves that the close went out first.
 */
static int grants_refusing_daemon(int lfd)
{
	static const char *const ops[] = { "\"hello\"", "\"open\"", "\"close\"", "\"ping\"" };
	static const char *const replies[] = {
		"{\"id\":%llu,\"ok\":true,\"version\":1}",
		("{\"id\":%llu,\"ok\":true,\"fds\":1,\"handle\":7,\"mode\":\"ro\",\"created\":false,"
		 "\"exec\":false,\"region\":{\"name\":\"r\",\"size\":4096,\"anonymous\":false,"
		 "\"grants\":1,\"clients\":1}}"),
		("{\"id\":%llu,\"ok\":false,\"error\":{\"code\":\"ENOENT\",\"errno\":2,"
		 "\"message\":\"no grant 7 on this connection\"}}"),
		"{\"id\":%llu,\"ok\":true}",
	};
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), mfd;

	if (fd < 0)
		return 1;
	mfd = memfd_create("r", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, 4096) < 0)
		return 2;
	unsigned long long ids[4];

	for (size_t i = 0; i < 4; i++) {
		char req[4096], reply[512], *end;
		const char *p;

		if (fake_read_frame(fd, req, sizeof(req)) < 0)
			return 3;
		if (!strstr(req, ops[i]) ||
		    (i == 2 && (!strstr(req, "\"handle\":7") || !strstr(req, "\"reply\":false"))))
			return 10 + (int)i;
		p = strstr(req, "\"id\":");
		if (!p)
			return 4;
		ids[i] = strtoull(p + 5, &end, 10);
		/* The close is answered once the ping has come, just before the ping. */
		if (i == 2)
			continue;
		for (size_t k = i == 3 ? 2 : i; k <= i; k++) {
			snprintf(reply, sizeof(reply), replies[k], ids[k]);
			if (fake_send_frame(fd, reply, k == 1 ? mfd : -1) < 0)
				return 5;
		}
	}
	return read(fd, &(char){ 0 }, 1) == 0 ? 0 : 6;
}

struct release_seen {
	int events;
	int error;
	uint64_t grant;
	char region[16];
	char message[256];
};

static void grants_on_event(struct mmapd_client *client, const struct mmapd_event *ev,
                            void *userdata)
{
	struct release_seen *seen = userdata;

	(void)client;
	if (ev->type != MMAPD_EVENT_RELEASE_FAILED)
		return;
	seen->events++;
	seen->error = ev->error;
	seen->grant = ev->seq;
	snprintf(seen->region, sizeof(seen->region), "%s", ev->region ? ev->region : "");
	snprintf(seen->message, sizeof(seen->message), "%s", ev->message ? ev->message : "");
}

/*
 * mmapd_region_close() does not wait for the daemon's reply, but a refusal is not lost: the
 * next call reads it, and it reaches the event handler as MMAPD_EVENT_RELEASE_FAILED with
 * the daemon's error, the region and the grant.
 */
START_TEST(test_grants_refused_release_after_a_close_that_does_not_wait_is_an_event)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RO);
	struct release_seen seen = { 0 };
	struct mmapd_client *client = NULL;
	struct mmapd_region *region = NULL;
	int status;
	pid_t pid;

	pid = grants_fake_daemon(grants_refusing_daemon, &client);
	mmapd_client_set_event_handler(client, grants_on_event, &seen);
	ck_assert_msg(mmapd_region_open(client, "r", &opts, &region) == 0, "open: %s",
	              mmapd_last_message());
	ck_assert_uint_eq(mmapd_region_length(region), 4096);
	/* The refusal comes only after the ping: a close that waited would never return. */
	mmapd_region_close(region);
	/* The next call reads it on the way to its own reply, which is not affected. */
	ck_assert_msg(mmapd_ping(client) == 0, "ping: %s", mmapd_last_message());
	ck_assert_int_ge(mmapd_client_dispatch(client, 0), 0);
	ck_assert_int_eq(seen.events, 1);
	ck_assert_int_eq(seen.error, -ENOENT);
	ck_assert_uint_eq(seen.grant, 7);
	ck_assert_str_eq(seen.region, "r");
	ck_assert_msg(strstr(seen.message, "no grant 7 on this connection") != NULL,
	              "message: %s", seen.message);
	mmapd_disconnect(client);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the fake daemon: status %d",
	              status);
}
END_TEST

/*
 * A close that does not wait is still handled before what follows it: with one grant allowed
 * per connection, a region closed and opened again at once (1000 times, and in another mode)
 * is always granted, and the daemon counts one grant at the end.
 */
START_TEST(test_grants_close_then_open_of_the_same_name_is_granted_at_once)
{
	struct mmapd_open_opts ro = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RO);
	struct mmapd_open_opts rw = MMAPD_OPEN_OPTS(.flags = MMAPD_OPEN_CREATE,
	                                            .mode = MMAPD_MODE_RW, .size = REGION_SIZE);
	struct mmapd_region *region = NULL;
	struct mmapd_client *client;
	struct test_daemon d;

	test_daemon_start(&d, "{\"max_grants_per_client\": 1}");
	client = test_client_connect(&d, "grants");
	ck_assert_msg(mmapd_region_open(client, "again", &rw, &region) == 0, "create: %s",
	              mmapd_last_message());
	for (int i = 0; i < 1000; i++) {
		*(volatile char *)mmapd_region_data(region);
		mmapd_region_close(region);
		ck_assert_msg(mmapd_region_open(client, "again", i % 2 ? &rw : &ro, &region) == 0,
		              "open %d: %s", i, mmapd_last_message());
	}
	ck_assert_uint_eq(test_daemon_status_u64(&d, "grants"), 1);
	mmapd_region_close(region);
	ck_assert_uint_eq(test_daemon_wait_status(&d, "grants", 0), 0);
	mmapd_disconnect(client);
	test_daemon_stop(&d);
}
END_TEST

/* Grants the mass-release test opens, and closes in a row. */
#define MASS_GRANTS 200

/*
 * In a forked child: a daemon that grants MASS_GRANTS opens, then counts the closes that
 * follow until a ping: quiet ones (no reply) and those that ask for a reply (answered at
 * once). Exit status 0 when the first MMAPD_QUIET_MAX were quiet, the next asked for a reply,
 * quiet ones came again after that (the library read a reply and settled the ones before it),
 * and every grant was closed once.
 */
static int grants_mass_release_daemon(int lfd)
{
	static const char open_reply[] =
		"{\"id\":%llu,\"ok\":true,\"fds\":1,\"handle\":%d,\"mode\":\"ro\",\"created\":false,"
		"\"exec\":false,\"region\":{\"name\":\"r\",\"size\":4096,\"anonymous\":false,"
		"\"grants\":1,\"clients\":1}}";
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), mfd, granted = 0, closes = 0, again = 0;
	bool seen[MASS_GRANTS + 1] = { false };

	if (fd < 0)
		return 1;
	mfd = memfd_create("r", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, 4096) < 0)
		return 2;
	for (;;) {
		char req[4096], reply[512], *end;
		unsigned long long id;
		const char *p;
		bool quiet;

		if (fake_read_frame(fd, req, sizeof(req)) < 0)
			return 3;
		p = strstr(req, "\"id\":");
		if (!p)
			return 4;
		id = strtoull(p + 5, &end, 10);
		if (strstr(req, "\"hello\"") || strstr(req, "\"ping\"")) {
			snprintf(reply, sizeof(reply), "{\"id\":%llu,\"ok\":true,\"version\":1}", id);
			if (fake_send_frame(fd, reply, -1) < 0)
				return 5;
			if (strstr(req, "\"ping\""))
				break;
		} else if (strstr(req, "\"open\"")) {
			snprintf(reply, sizeof(reply), open_reply, id, ++granted);
			if (granted > MASS_GRANTS || fake_send_frame(fd, reply, mfd) < 0)
				return 6;
		} else if ((p = strstr(req, "\"handle\":")) != NULL && strstr(req, "\"close\"")) {
			long h = strtol(p + 9, &end, 10);

			if (h < 1 || h > MASS_GRANTS || seen[h])
				return 7;
			seen[h] = true;
			quiet = strstr(req, "\"reply\":false") != NULL;
			if (closes < MMAPD_QUIET_MAX ? !quiet : closes == MMAPD_QUIET_MAX && quiet)
				return 8;
			if (quiet && closes > MMAPD_QUIET_MAX)
				again++;
			closes++;
			if (!quiet) {
				snprintf(reply, sizeof(reply), "{\"id\":%llu,\"ok\":true}", id);
				if (fake_send_frame(fd, reply, -1) < 0)
					return 9;
			}
		} else {
			return 10;
		}
	}
	if (closes != MASS_GRANTS || again == 0)
		return 11;
	return read(fd, &(char){ 0 }, 1) == 0 ? 0 : 12;
}

/*
 * Closing many regions in a row keeps the library's unsettled releases bounded: at most
 * MMAPD_QUIET_MAX quiet closes wait, then a close asks for a reply, and the next close reads
 * it (no other call reads meanwhile), which settles them. Nothing is reported (all were
 * released).
 */
START_TEST(test_grants_mass_release_keeps_quiet_closes_bounded)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RO);
	struct mmapd_region *regions[MASS_GRANTS];
	struct release_seen seen = { 0 };
	struct mmapd_client *client = NULL;
	int status;
	pid_t pid;

	pid = grants_fake_daemon(grants_mass_release_daemon, &client);
	mmapd_client_set_event_handler(client, grants_on_event, &seen);
	for (int i = 0; i < MASS_GRANTS; i++)
		ck_assert_msg(mmapd_region_open(client, "r", &opts, &regions[i]) == 0, "open %d: %s",
		              i, mmapd_last_message());
	/* The first MMAPD_QUIET_MAX + 1 closes: the last asks for a reply; it comes, unread. */
	for (int i = 0; i <= MMAPD_QUIET_MAX; i++)
		mmapd_region_close(regions[i]);
	struct pollfd pfd = { .fd = mmapd_client_fd(client), .events = POLLIN };

	ck_assert_int_eq(poll(&pfd, 1, TEST_WAIT_MS), 1);
	/* The next close reads it first: the releases are settled, and quiet ones follow. */
	for (int i = MMAPD_QUIET_MAX + 1; i < MASS_GRANTS; i++)
		mmapd_region_close(regions[i]);
	ck_assert_msg(mmapd_ping(client) == 0, "ping: %s", mmapd_last_message());
	ck_assert_int_ge(mmapd_client_dispatch(client, 0), 0);
	ck_assert_int_eq(seen.events, 0);
	mmapd_disconnect(client);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the fake daemon: status %d",
	              status);
}
END_TEST

/* Whether the hello reply lists feature name. */
static bool grants_has_feature(const cJSON *hello, const char *name)
{
	const cJSON *f, *list = cJSON_GetObjectItemCaseSensitive(hello, "features");

	cJSON_ArrayForEach(f, list)
		if (cJSON_IsString(f) && strcmp(f->valuestring, name) == 0)
			return true;
	return false;
}

/*
 * A close that says "reply": false is answered only when it fails (docs/protocol.md, close):
 * the next frame after a released grant is the reply to the request that followed it, while
 * a refused one is answered with its id and error, first. A bad "reply" is EINVAL, and
 * "reply": true is the plain close. hello announces it as "quiet-close".
 */
START_TEST(test_grants_quiet_close_is_answered_only_when_it_fails)
{
	struct test_daemon d;
	struct test_conn c;
	cJSON *reply;
	uint64_t handle, id, ping;

	test_daemon_start(&d, NULL);
	test_conn_open(&c, &d);
	reply = test_conn_hello_version(&c, 1);
	test_assert_ok(reply);
	ck_assert_msg(grants_has_feature(reply, "quiet-close"), "hello: %s", test_describe(reply));
	cJSON_Delete(reply);
	test_daemon_create(&d, "q", REGION_SIZE, false);

	handle = test_conn_grant(&c, "q", "ro");
	test_conn_grant(&c, "q", "rw");
	ck_assert_uint_eq(test_daemon_status_u64(&d, "grants"), 2);
	test_conn_sendf(&c, "{'op':'close','handle':%llu,'reply':false}",
	                (unsigned long long)handle);
	ping = test_conn_sendf(&c, "{'op':'ping'}");
	reply = test_conn_recv_frame(&c);
	test_assert_id(reply, ping);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	ck_assert_uint_eq(test_daemon_status_u64(&d, "grants"), 1);

	/* Refused: the same handle again, and one that never was. */
	for (int i = 0; i < 2; i++) {
		id = test_conn_sendf(&c, "{'op':'close','handle':%llu,'reply':false}",
		                     i == 0 ? (unsigned long long)handle : 987654ull);
		ping = test_conn_sendf(&c, "{'op':'ping'}");
		reply = test_conn_recv_frame(&c);
		test_assert_id(reply, id);
		test_assert_error(reply, "EBADF", EBADF);
		cJSON_Delete(reply);
		reply = test_conn_recv_frame(&c);
		test_assert_id(reply, ping);
		cJSON_Delete(reply);
	}

	reply = test_conn_callf(&c, "{'op':'close','handle':%llu,'reply':'no'}",
	                        (unsigned long long)handle + 1);
	test_assert_error(reply, "EINVAL", EINVAL);
	ck_assert_msg(strstr(test_json_str(cJSON_GetObjectItemCaseSensitive(reply, "error"),
	                                   "message"), "'reply'") != NULL,
	              "%s", test_describe(reply));
	cJSON_Delete(reply);
	ck_assert_uint_eq(test_daemon_status_u64(&d, "grants"), 1);
	reply = test_conn_callf(&c, "{'op':'close','handle':%llu,'reply':true}",
	                        (unsigned long long)handle + 1);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	ck_assert_uint_eq(test_daemon_status_u64(&d, "grants"), 0);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

/*
 * What uid 65534 can do with quiet closes: release only its own grants (another connection's
 * handle is EBADF, answered, and that grant stays), and a flood of quiet closes that fail,
 * never read, is still cut off by max_queue_bytes (every failure is answered, so the flood
 * cannot grow without bound unseen) while another client is served.
 */
START_TEST(test_grants_quiet_close_flood_as_nobody_is_answered_and_bounded)
{
	enum { N = 20000 };
	struct test_daemon d;
	struct test_conn root, nobody;
	char *buf, one[96];
	size_t len = 0, cap = (size_t)N * 80;
	uint64_t handle;
	cJSON *reply;
	int r, frames = 0;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{" CFG_OPEN ", \"max_queue_bytes\": 65536}");
	test_conn_open_hello(&root, &d);
	/* The creator's grant and one more: the one nobody aims at. */
	close(grants_create(&root, "q", false, 0644));
	handle = test_conn_grant(&root, "q", "ro");
	ck_assert_uint_eq(test_daemon_status_u64(&d, "grants"), 2);

	test_conn_open_hello_as(&nobody, &d, NOBODY, NOBODY);
	reply = test_conn_callf(&nobody, "{'op':'close','handle':%llu,'reply':false}",
	                        (unsigned long long)handle);
	test_assert_error(reply, "EBADF", EBADF);
	cJSON_Delete(reply);
	ck_assert_uint_eq(test_daemon_status_u64(&d, "grants"), 2);

	buf = malloc(cap);
	ck_assert(buf != NULL);
	for (int i = 0; i < N; i++) {
		int n = snprintf(one, sizeof(one),
		                 "{\"id\":%d,\"op\":\"close\",\"handle\":%d,\"reply\":false}",
		                 1000 + i, 1000000 + i);

		len += test_frame_put(buf + len, one, (size_t)n);
	}
	r = test_conn_send_raw(&nobody, buf, len);
	free(buf);
	ck_assert_msg(r == 0 || r == -EPIPE || r == -ECONNRESET, "sending the flood: %s",
	              strerror(-r));
	/* Error replies, then the end of the stream, well before all N were answered. */
	for (;;) {
		cJSON *obj;

		r = test_conn_recv(&nobody, TEST_WAIT_MS, &obj);
		if (r != 1)
			break;
		test_assert_error(obj, "EBADF", EBADF);
		cJSON_Delete(obj);
		frames++;
	}
	ck_assert_msg(r == 0 || r == -ECONNRESET, "after %d replies: %s", frames, strerror(-r));
	ck_assert_int_lt(frames, N);
	reply = test_conn_callf(&root, "{'op':'ping'}");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	ck_assert_uint_eq(test_daemon_status_u64(&d, "grants"), 2);
	test_conn_close(&nobody);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

static Suite *grants_suite(void)
{
	Suite *s = suite_create("grants");
	TCase *tc = tcase_create("grants");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_add_test(tc, test_grants_refused_release_after_a_close_that_does_not_wait_is_an_event);
	tcase_add_test(tc, test_grants_close_then_open_of_the_same_name_is_granted_at_once);
	tcase_add_test(tc, test_grants_quiet_close_is_answered_only_when_it_fails);
	tcase_add_test(tc, test_grants_mass_release_keeps_quiet_closes_bounded);
	tcase_add_test(tc, test_grants_quiet_close_flood_as_nobody_is_answered_and_bounded);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_grants_anonymous_ro_and_cow_cannot_be_reopened_writable, 0,
	                    2);
	tcase_add_test(tc, test_grants_ro_grants_share_no_open_file_description);
	tcase_add_test(tc, test_grants_file_created_under_umask_002_is_private_on_disk);
	tcase_add_test(tc, test_grants_placed_0666_file_is_tightened_at_first_open_keeping_its_acl);
	tcase_add_test(tc, test_grants_growth_past_max_region_size_is_never_adopted);
	tcase_add_test(tc, test_grants_daemon_refuses_a_file_it_cannot_take_over);
	tcase_add_test(tc, test_grants_client_lists_past_a_region_an_older_daemon_reports_at_2_62);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(grants_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
