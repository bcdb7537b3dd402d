/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of adoption (issue 12): a client hands the daemon a descriptor of a file it
 * opened itself (op adopt) and gets a region for it. Two client processes adopt the same file,
 * one only O_RDONLY, and share its pages; the same inode is one region; locks, notifications,
 * resizes and flushes work on it; it goes with its last holder. The hostile cases run as uid
 * 65534 against a real daemon: descriptors of FIFOs, sockets, devices, directories, O_PATH,
 * write-only and /proc files, descriptors on other ops or two at once, a 1 TiB sparse file, a
 * file root can read and nobody cannot, and files unlinked, renamed, truncated and replaced
 * behind the daemon's back. Adopted regions are adopted again after a daemon restart. The
 * suite runs as root (the attacks need a second uid); without
 * root they are skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"

#define SIZE 8192u
#define TIB (1ull << 40)
#define CFG "{\"socket_mode\": \"0666\", \"size_check_ms\": 50}"

static const char pattern[] = "written through an adopted region";

/* Makes the file dir/name of size bytes with mode perm (root's), returns its path (static). */
static const char *adopt_file(const struct test_daemon *d, const char *name, uint64_t size,
                              unsigned perm)
{
	static char path[TEST_PATH_MAX + 64];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", d->dir, name);
	unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, perm);
	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	ck_assert_int_eq(fchmod(fd, perm), 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	close(fd);
	return path;
}

/*
 * Sends the request fmt (single quotes for double, as test_conn_sendf) as one frame, with
 * nfds descriptors on its first byte, in one sendmsg. Returns its id.
 */
static uint64_t adopt_sendfds(struct test_conn *c, const int *fds, size_t nfds, const char *fmt,
                              ...)
{
	uint64_t id = c->next_id++;
	uint8_t *frame;
	char *body, *text;
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	ck_assert(vasprintf(&body, fmt, ap) > 0);
	va_end(ap);
	for (char *p = body; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	ck_assert(asprintf(&text, "{\"id\":%llu,%s", (unsigned long long)id, body + 1) > 0);
	len = strlen(text);
	frame = malloc(FRAME_HEADER_SIZE + len);
	ck_assert_ptr_nonnull(frame);
	frame_header_put(frame, (uint32_t)len);
	memcpy(frame + FRAME_HEADER_SIZE, text, len);
	ck_assert_int_eq(fdpass_send(c->fd, frame, FRAME_HEADER_SIZE + len, fds, nfds, 0),
	                 (ssize_t)(FRAME_HEADER_SIZE + len));
	free(frame);
	free(text);
	free(body);
	return id;
}

/* adopt of fd in mode (name may be NULL) over c; returns the reply. */
static cJSON *adopt_call(struct test_conn *c, int fd, const char *mode, const char *name)
{
	char named[300] = "";
	uint64_t id;

	if (name)
		snprintf(named, sizeof(named), ",'name':'%s'", name);
	id = adopt_sendfds(c, &fd, 1, "{'op':'adopt','mode':'%s','fds':1%s}", mode, named);
	return test_conn_reply(c, id, TEST_WAIT_MS);
}

/* Adopts fd (asserting ok), takes the grant's descriptor into *ret_fd (may be NULL: closed)
 * and returns the region's name (caller frees). */
static char *adopt_ok(struct test_conn *c, int fd, const char *mode, const char *name,
                      int *ret_fd)
{
	cJSON *reply = adopt_call(c, fd, mode, name);
	const cJSON *region;
	char *got;
	int gfd;

	test_assert_ok(reply);
	region = cJSON_GetObjectItemCaseSensitive(reply, "region");
	ck_assert_msg(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(region, "adopted")),
	              "no \"adopted\": true in %s", test_describe(reply));
	got = strdup(test_json_str(region, "name"));
	gfd = test_conn_take_fd(c);
	if (ret_fd)
		*ret_fd = gfd;
	else
		close(gfd);
	cJSON_Delete(reply);
	return got;
}

/* Asserts that the reply is the error code/err, and frees it. */
static void adopt_refused(cJSON *reply, const char *code, int err)
{
	test_assert_error(reply, code, err);
	cJSON_Delete(reply);
}

/*
 * Opens path with flags in a child that became uid and gid 65534, and returns the
 * descriptor it sent back, or -errno of its open.
 */
static int adopt_open_as_nobody(const char *path, int flags)
{
	struct fd_queue q;
	int sv[2], status, fd, err = 0;
	pid_t pid;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(TEST_NOBODY) < 0 || setuid(TEST_NOBODY) < 0)
			_exit(99);
		fd = open(path, flags | O_CLOEXEC);
		err = fd < 0 ? errno : 0;
		_exit(fdpass_send(sv[1], &err, sizeof(err), fd >= 0 ? &fd : NULL, fd >= 0, 0) ==
		      (ssize_t)sizeof(err) ? 0 : 98);
	}
	close(sv[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	fd_queue_init(&q);
	ck_assert_int_eq(fdpass_recv(sv[0], &err, sizeof(err), &q, 0), (ssize_t)sizeof(err));
	close(sv[0]);
	if (err)
		return -err;
	ck_assert_int_eq(fd_queue_take(&q, 1, &fd), 0);
	return fd;
}

/* Asserts that c still answers a ping. */
static void adopt_assert_serving(struct test_conn *c)
{
	cJSON *reply = test_conn_callf(c, "{'op':'ping'}");

	test_assert_ok(reply);
	cJSON_Delete(reply);
}

/*
 * The child half of the sharing test: as nobody, with libmmapd, open path O_RDONLY, adopt it
 * read-only (it joins root's region), see root's bytes, and be refused everything writable.
 * Exit status: 0, or which step failed.
 */
static int adopt_child_reader(const struct test_daemon *d, const char *path, const char *name)
{
	struct mmapd_open_opts ro = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RO);
	struct mmapd_open_opts rw = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	struct mmapd_region *region = NULL, *other = NULL;
	struct mmapd_client *client;
	int fd, r;

	if (setgroups(0, NULL) < 0 || setgid(TEST_NOBODY) < 0 || setuid(TEST_NOBODY) < 0)
		return 99;
	if (mmapd_connect(d->sock, "adopt-reader", &client) < 0)
		return 1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 2;
	if (mmapd_region_adopt(client, fd, NULL, &ro, &region) < 0)
		return 3;
	if (strcmp(mmapd_region_name(region), name) != 0)
		return 4;
	if (memcmp(mmapd_region_data(region), pattern, sizeof(pattern)) != 0)
		return 5;
	/* The descriptor proves read access only: rw is refused, by descriptor and by name. */
	r = mmapd_region_adopt(client, fd, NULL, &rw, &other);
	if (r != -EACCES)
		return 6;
	r = mmapd_region_open(client, name, &rw, &other);
	if (r != -EACCES)
		return 7;
	close(fd);
	/* Root writes more; this mapping sees it (the same page cache pages). */
	printf("ready\n");
	fflush(stdout);
	for (int i = 0; i < 500; i++) {
		if (((volatile char *)mmapd_region_data(region))[SIZE - 1] == 'Z')
			break;
		usleep(10000);
	}
	if (((volatile char *)mmapd_region_data(region))[SIZE - 1] != 'Z')
		return 8;
	mmapd_region_close(region);
	mmapd_disconnect(client);
	return 0;
}

/*
 * Two client processes adopt the same file: root with O_RDWR, nobody with O_RDONLY. They get
 * one region (the same inode), nobody gets read-only grants only (rw refused by descriptor
 * and by name), and both map the same pages: root's writes show in nobody's mapping.
 */
START_TEST(test_adopt_same_file_from_two_processes_one_read_only)
{
	struct mmapd_open_opts rw = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	struct mmapd_region *region = NULL;
	struct mmapd_client *client;
	struct test_daemon d;
	const char *path;
	char line[64], name[256];
	int fd, p[2], status;
	pid_t pid;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, CFG);
	path = adopt_file(&d, "shared.bin", SIZE, 0644);
	client = test_client_connect(&d, "adopt-writer");
	fd = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(mmapd_region_adopt(client, fd, "shared", &rw, &region) == 0, "adopt: %s",
	              mmapd_last_message());
	close(fd);
	snprintf(name, sizeof(name), "%s", mmapd_region_name(region));
	ck_assert_str_eq(name, "shared");
	memcpy(mmapd_region_data(region), pattern, sizeof(pattern));

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDOUT_FILENO);
		_exit(adopt_child_reader(&d, path, name));
	}
	close(p[1]);
	{
		FILE *f = fdopen(p[0], "r");

		ck_assert_msg(fgets(line, sizeof(line), f) != NULL, "the reader said nothing");
		ck_assert_str_eq(line, "ready\n");
		((volatile char *)mmapd_region_data(region))[SIZE - 1] = 'Z';
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		fclose(f);
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the reader failed at step %d",
	              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	mmapd_region_close(region);
	mmapd_disconnect(client);
	test_daemon_stop(&d);
}
END_TEST

/*
 * Locks, change notification, resize (growth and the two-phase shrink) and flush work on an
 * adopted region as on any other, and the file itself changes size.
 */
START_TEST(test_adopt_locks_notify_resize_flush)
{
	struct test_conn a, b;
	struct test_daemon d;
	const char *path;
	cJSON *reply, *ev;
	struct stat st;
	uint64_t lock, id, ack;
	char *name;
	int fd;

	test_daemon_start(&d, CFG);
	path = adopt_file(&d, "coord.bin", SIZE, 0600);
	test_conn_open_hello(&a, &d);
	test_conn_open_hello(&b, &d);
	fd = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	name = adopt_ok(&a, fd, "rw", "coord", NULL);
	free(adopt_ok(&b, fd, "ro", NULL, NULL));

	reply = test_conn_callf(&a, "{'op':'lock','name':'coord','mode':'exclusive'}");
	test_assert_ok(reply);
	lock = test_json_u64(reply, "lock");
	cJSON_Delete(reply);
	reply = test_conn_callf(&b, "{'op':'lock','name':'coord','mode':'shared','wait':false}");
	adopt_refused(reply, "EAGAIN", EAGAIN);
	reply = test_conn_callf(&a, "{'op':'unlock','lock':%llu}", (unsigned long long)lock);
	test_assert_ok(reply);
	cJSON_Delete(reply);

	test_conn_subscribe(&b, name);
	test_conn_changed(&a, name, 0, 16);
	ev = test_conn_expect_event(&b, "changed", TEST_WAIT_MS);
	cJSON_Delete(ev);

	reply = test_conn_callf(&a, "{'op':'resize','name':'coord','size':%u}", 2 * SIZE);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, 2 * SIZE);
	cJSON_Delete(test_conn_expect_event(&b, "resized", TEST_WAIT_MS));
	/* The shrink waits for b (a holder) to acknowledge. */
	id = test_conn_sendf(&a, "{'op':'resize','name':'coord','size':%u}", SIZE);
	ev = test_conn_expect_event(&b, "shrinking", TEST_WAIT_MS);
	reply = test_conn_callf(&b, "{'op':'shrink-ack','shrink':%llu}",
	                        (unsigned long long)test_json_u64(ev, "shrink"));
	test_assert_ok(reply);
	cJSON_Delete(reply);
	/* a holds a grant too, so it acknowledges as well (the reply comes after that). */
	ack = test_conn_sendf(&a, "{'op':'shrink-ack','shrink':%llu}",
	                      (unsigned long long)test_json_u64(ev, "shrink"));
	cJSON_Delete(ev);
	reply = test_conn_reply(&a, ack, TEST_WAIT_MS);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	reply = test_conn_reply(&a, id, TEST_WAIT_MS);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, SIZE);

	reply = test_conn_callf(&a, "{'op':'flush','name':'coord'}");
	test_assert_ok(reply);
	cJSON_Delete(reply);

	close(fd);
	free(name);
	test_conn_close(&b);
	test_conn_close(&a);
	test_daemon_stop(&d);
}
END_TEST

/*
 * The region lives while someone holds it: listed and stat'ed as adopted (with no path),
 * gone once its last holder left, and not in the data directory at any time.
 */
START_TEST(test_adopt_region_goes_with_its_last_holder)
{
	struct test_conn a, b;
	struct test_daemon d;
	const cJSON *region;
	cJSON *reply;
	char *name;
	int fd;

	test_daemon_start(&d, CFG);
	test_conn_open_hello(&a, &d);
	test_conn_open_hello(&b, &d);
	fd = open(adopt_file(&d, "life.bin", SIZE, 0600), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	name = adopt_ok(&a, fd, "ro", NULL, NULL);
	ck_assert_msg(strncmp(name, "adopted-", 8) == 0, "a made name: %s", name);
	/* The same inode under another name is refused; under none it joins. */
	adopt_refused(adopt_call(&b, fd, "ro", "other"), "EEXIST", EEXIST);
	free(adopt_ok(&b, fd, "cow", NULL, NULL));
	close(fd);

	reply = test_daemon_stat(&d, name, &region);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(region, "adopted")));
	ck_assert_uint_eq(test_json_u64(region, "clients"), 2);
	ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(region, "path"));
	cJSON_Delete(reply);
	reply = test_conn_callf(&a, "{'op':'list'}");
	test_assert_ok(reply);
	{
		char *text = cJSON_PrintUnformatted(reply);
		bool listed = text && strstr(text, name) != NULL;

		free(text);
		ck_assert_msg(listed, "not listed: %s", test_describe(reply));
	}
	cJSON_Delete(reply);
	/* mmapctl shows it as adopted. */
	{
		char out[4096];

		ck_assert_int_eq(test_run_ctl(&d, out, sizeof(out), "stat", name, (char *)NULL), 0);
		/* The type row, not the name, which begins with "adopted-". */
		ck_assert_msg(strstr(out, " adopted\n") != NULL, "mmapctl stat: %s", out);
		ck_assert_int_eq(test_run_ctl(&d, out, sizeof(out), "list", (char *)NULL), 0);
		ck_assert_msg(strstr(out, " adopted ") != NULL, "mmapctl list: %s", out);
	}
	/* Never deleted by name; nothing of it in the data directory. */
	reply = test_conn_callf(&a, "{'op':'delete','name':'%s'}", name);
	adopt_refused(reply, "EPERM", EPERM);
	/* Nor renamed, nor replaced by a copy or a rename. */
	adopt_refused(test_conn_callf(&a, "{'op':'rename','name':'%s','to':'moved'}", name),
	              "EPERM", EPERM);
	test_daemon_create(&d, "plain", SIZE, false);
	adopt_refused(test_conn_callf(&a, "{'op':'rename','name':'plain','to':'%s',"
	                                  "'replace':true}", name), "EPERM", EPERM);
	adopt_refused(test_conn_callf(&a, "{'op':'copy','name':'plain','to':'%s',"
	                                  "'replace':true}", name), "EPERM", EPERM);
	{
		char path[TEST_PATH_MAX + 300];

		snprintf(path, sizeof(path), "%s/%s", d.data, name);
		ck_assert_int_ne(access(path, F_OK), 0);
	}

	test_conn_close(&a);
	reply = test_daemon_stat(&d, name, &region);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	test_conn_close(&b);
	/* The last holder left: the region went (and its descriptor with it). */
	for (int i = 0; i < 100; i++) {
		test_conn_open_hello(&a, &d);
		reply = test_conn_callf(&a, "{'op':'stat','name':'%s'}", name);
		test_conn_close(&a);
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok")))
			break;
		cJSON_Delete(reply);
		reply = NULL;
		usleep(10000);
	}
	adopt_refused(reply, "ENOENT", ENOENT);
	free(name);
	test_daemon_stop(&d);
}
END_TEST

/*
 * Hostile descriptors, sent by uid 65534 who opened them itself: each gets its documented
 * error, the descriptor is closed by the daemon, and the connection keeps being served.
 */
START_TEST(test_adopt_hostile_descriptors_are_refused)
{
	char fifo[TEST_PATH_MAX + 16], secret_dir[TEST_PATH_MAX + 16];
	struct test_conn c;
	struct test_daemon d;
	int fd, sv[2];
	uint64_t fds_before;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, CFG);
	test_conn_open_hello_as(&c, &d, TEST_NOBODY, TEST_NOBODY);
	fds_before = test_daemon_status_u64(&d, "open_fds");

	/* A FIFO (opened O_RDWR so that the open does not block). */
	snprintf(fifo, sizeof(fifo), "%s/fifo", d.dir);
	ck_assert_int_eq(mkfifo(fifo, 0666), 0);
	ck_assert_int_eq(chmod(fifo, 0666), 0);
	fd = adopt_open_as_nobody(fifo, O_RDWR | O_NONBLOCK);
	ck_assert_int_ge(fd, 0);
	adopt_refused(adopt_call(&c, fd, "ro", NULL), "ENODEV", ENODEV);
	close(fd);
	/* A socket. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	adopt_refused(adopt_call(&c, sv[0], "rw", NULL), "ENODEV", ENODEV);
	close(sv[0]);
	close(sv[1]);
	/* A character device. */
	fd = adopt_open_as_nobody("/dev/zero", O_RDWR);
	ck_assert_int_ge(fd, 0);
	adopt_refused(adopt_call(&c, fd, "rw", NULL), "ENODEV", ENODEV);
	close(fd);
	/* A directory. */
	fd = adopt_open_as_nobody("/tmp", O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(fd, 0);
	adopt_refused(adopt_call(&c, fd, "ro", NULL), "EISDIR", EISDIR);
	close(fd);
	/* An O_PATH descriptor of a file nobody may not read: no proof of anything. */
	snprintf(secret_dir, sizeof(secret_dir), "%s/pathonly", d.dir);
	adopt_file(&d, "pathonly", SIZE, 0600);
	ck_assert_int_eq(adopt_open_as_nobody(secret_dir, O_RDONLY), -EACCES);
	fd = adopt_open_as_nobody(secret_dir, O_PATH);
	ck_assert_int_ge(fd, 0);
	adopt_refused(adopt_call(&c, fd, "ro", NULL), "EBADF", EBADF);
	close(fd);
	/* A write-only descriptor proves no read access. */
	adopt_file(&d, "wronly", SIZE, 0622);
	snprintf(secret_dir, sizeof(secret_dir), "%s/wronly", d.dir);
	fd = adopt_open_as_nobody(secret_dir, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	adopt_refused(adopt_call(&c, fd, "ro", NULL), "EACCES", EACCES);
	close(fd);
	/* A file of /proc: another kernel view, never adopted. */
	fd = adopt_open_as_nobody("/proc/self/status", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	adopt_refused(adopt_call(&c, fd, "ro", NULL), "ENODEV", ENODEV);
	close(fd);
	/* An adopt without a descriptor. */
	adopt_refused(test_conn_callf(&c, "{'op':'adopt','mode':'ro'}"), "EBADF", EBADF);

	adopt_assert_serving(&c);
	ck_assert_uint_eq(test_daemon_status_u64(&d, "open_fds"), fds_before);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

/*
 * Opens a file made on a file system of type fstype mounted on dir in a mount namespace of a
 * child's own, which the daemon cannot see (as a FUSE mount in a user namespace would be),
 * and returns it.
 */
static int adopt_open_unseen(const char *dir, const char *fstype)
{
	struct fd_queue q;
	int sv[2], status, fd;
	pid_t pid;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char path[2 * TEST_PATH_MAX];

		if (unshare(CLONE_NEWNS) < 0 ||
		    mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("none", dir, fstype, 0, NULL) < 0)
			_exit(97);
		snprintf(path, sizeof(path), "%s/f", dir);
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0 || ftruncate(fd, 4096) < 0)
			_exit(98);
		_exit(fdpass_send(sv[1], "x", 1, &fd, 1, 0) == 1 ? 0 : 99);
	}
	close(sv[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	fd_queue_init(&q);
	{
		char x;

		ck_assert_int_eq(fdpass_recv(sv[0], &x, 1, &q, 0), 1);
	}
	close(sv[0]);
	ck_assert_int_eq(fd_queue_take(&q, 1, &fd), 0);
	return fd;
}

/*
 * Where the file lives: a file of a mount the daemon cannot see (another mount namespace:
 * what a FUSE mount made in a user namespace would be) is refused before anything asks its
 * file system (ramfs here), unless it is shmem, which never waits (a tmpfs there, a memfd on
 * the kernel's internal mount); a memfd is adopted and shared by its inode.
 */
START_TEST(test_adopt_unseen_mount_refused_memfd_accepted)
{
	char dir[TEST_PATH_MAX + 16];
	struct test_conn a, b;
	struct test_daemon d;
	char *name, *again;
	int fd, ga, gb;
	char buf[sizeof(pattern)];

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, CFG);
	test_conn_open_hello_as(&a, &d, TEST_NOBODY, TEST_NOBODY);
	test_conn_open_hello_as(&b, &d, TEST_NOBODY, TEST_NOBODY);
	snprintf(dir, sizeof(dir), "%s/unseen", d.dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	fd = adopt_open_unseen(dir, "ramfs");
	adopt_refused(adopt_call(&a, fd, "ro", NULL), "ENODEV", ENODEV);
	close(fd);
	fd = adopt_open_unseen(dir, "tmpfs");
	free(adopt_ok(&a, fd, "ro", NULL, NULL));
	close(fd);

	fd = memfd_create("adopt-test", MFD_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fchmod(fd, 0644), 0);
	ck_assert_int_eq(ftruncate(fd, SIZE), 0);
	name = adopt_ok(&a, fd, "rw", NULL, &ga);
	again = adopt_ok(&b, fd, "ro", NULL, &gb);
	ck_assert_str_eq(name, again);
	ck_assert_int_eq(pwrite(ga, pattern, sizeof(pattern), 0), (ssize_t)sizeof(pattern));
	ck_assert_int_eq(pread(gb, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	ck_assert(memcmp(buf, pattern, sizeof(buf)) == 0);
	close(ga);
	close(gb);
	close(fd);
	free(again);
	free(name);
	test_conn_close(&b);
	test_conn_close(&a);
	test_daemon_stop(&d);
}
END_TEST

/* The daemon's own descriptors (a grant) are not adopted by another user: open by name. */
START_TEST(test_adopt_refuses_the_daemons_own_grant)
{
	struct test_conn root, c;
	struct test_daemon d;
	cJSON *reply;
	int fd;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, CFG);
	test_conn_open_hello(&root, &d);
	reply = test_conn_callf(&root, "{'op':'open','name':'mine','mode':'ro','create':true,"
	                        "'size':4096,'perm':420}");
	test_assert_ok(reply);
	fd = test_conn_take_fd(&root);
	cJSON_Delete(reply);
	test_conn_open_hello_as(&c, &d, TEST_NOBODY, TEST_NOBODY);
	adopt_refused(adopt_call(&c, fd, "ro", NULL), "EPERM", EPERM);
	close(fd);
	test_conn_close(&c);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

/*
 * The descriptor rule: a descriptor on any other op refuses that request (closing the
 * descriptor) and nothing else; two descriptors refuse the adopt; an adopt frame followed by
 * other frames in the same write takes its descriptor and the others run.
 */
START_TEST(test_adopt_descriptor_rule)
{
	struct test_conn c;
	struct test_daemon d;
	uint8_t frames[512];
	const char *path;
	size_t len = 0;
	cJSON *reply;
	uint64_t id, fds_before;
	int fd, two[2];
	const char *texts[3] = {
		"{\"id\":100,\"op\":\"adopt\",\"mode\":\"ro\",\"fds\":1}",
		"{\"id\":101,\"op\":\"ping\"}",
		"{\"id\":102,\"op\":\"ping\"}",
	};

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, CFG);
	path = adopt_file(&d, "rule.bin", SIZE, 0644);
	test_conn_open_hello_as(&c, &d, TEST_NOBODY, TEST_NOBODY);
	fds_before = test_daemon_status_u64(&d, "open_fds");
	fd = adopt_open_as_nobody(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);

	/* On a ping: that ping is refused, the connection serves on. */
	id = adopt_sendfds(&c, &fd, 1, "{'op':'ping'}");
	adopt_refused(test_conn_reply(&c, id, TEST_WAIT_MS), "EPROTO", EPROTO);
	adopt_assert_serving(&c);
	/* Two on an adopt (the kernel truncates the control message): refused. */
	two[0] = fd;
	two[1] = fd;
	id = adopt_sendfds(&c, two, 2, "{'op':'adopt','mode':'ro','fds':1}");
	adopt_refused(test_conn_reply(&c, id, TEST_WAIT_MS), "E2BIG", E2BIG);
	adopt_assert_serving(&c);
	/* Three: more than the daemon has room for (MSG_CTRUNC): refused the same way. */
	{
		int three[3] = { fd, fd, fd };

		id = adopt_sendfds(&c, three, 3, "{'op':'adopt','mode':'ro','fds':1}");
		adopt_refused(test_conn_reply(&c, id, TEST_WAIT_MS), "E2BIG", E2BIG);
	}
	/* On the second half of a frame, not its first byte: that frame is refused. */
	{
		static const char ping[] = "{\"id\":50,\"op\":\"ping\"}";
		uint8_t buf[64];
		size_t n = strlen(ping);

		frame_header_put(buf, (uint32_t)n);
		memcpy(buf + FRAME_HEADER_SIZE, ping, n);
		ck_assert_int_eq(test_conn_send_raw(&c, buf, 10), 0);
		usleep(50000);
		ck_assert_int_eq(fdpass_send(c.fd, buf + 10, FRAME_HEADER_SIZE + n - 10, &fd, 1, 0),
		                 (ssize_t)(FRAME_HEADER_SIZE + n - 10));
		adopt_refused(test_conn_reply(&c, 50, TEST_WAIT_MS), "EPROTO", EPROTO);
	}
	adopt_assert_serving(&c);
	ck_assert_uint_eq(test_daemon_status_u64(&d, "open_fds"), fds_before);

	/* adopt + ping + ping in one sendmsg: the adopt has the descriptor, the pings run. */
	c.next_id = 103;
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(texts[i]);

		frame_header_put(frames + len, (uint32_t)n);
		memcpy(frames + len + FRAME_HEADER_SIZE, texts[i], n);
		len += FRAME_HEADER_SIZE + n;
	}
	ck_assert_int_eq(fdpass_send(c.fd, frames, len, &fd, 1, 0), (ssize_t)len);
	reply = test_conn_reply(&c, 100, TEST_WAIT_MS);
	test_assert_ok(reply);
	close(test_conn_take_fd(&c));
	cJSON_Delete(reply);
	for (uint64_t i = 101; i <= 102; i++) {
		reply = test_conn_reply(&c, i, TEST_WAIT_MS);
		test_assert_ok(reply);
		cJSON_Delete(reply);
	}
	/* A ping sent first, then an adopt with its descriptor: read together, still right. */
	ck_assert_int_eq(test_conn_send_frame(&c, texts[1], strlen(texts[1])), 0);
	id = adopt_sendfds(&c, &fd, 1, "{'op':'adopt','mode':'ro','fds':1}");
	reply = test_conn_reply(&c, 101, TEST_WAIT_MS);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	reply = test_conn_reply(&c, id, TEST_WAIT_MS);
	test_assert_ok(reply);
	close(test_conn_take_fd(&c));
	cJSON_Delete(reply);
	/* Before hello: refused as every request but hello is, and its descriptor closed. */
	test_conn_close(&c);
	test_conn_open_as(&c, &d, TEST_NOBODY, TEST_NOBODY);
	id = adopt_sendfds(&c, &fd, 1, "{'op':'adopt','mode':'ro','fds':1}");
	adopt_refused(test_conn_reply(&c, id, TEST_WAIT_MS), "EPROTO", EPROTO);
	close(fd);
	test_conn_close(&c);
	ck_assert_uint_eq(test_daemon_wait_status(&d, "open_fds", fds_before - 1), fds_before - 1);
	test_daemon_stop(&d);
}
END_TEST

/*
 * A 1 TiB sparse file is adopted without being read (the daemon's memory stays small) and
 * max_region_size applies to it: growth past the limit is refused, and a file above it is
 * not adopted.
 */
START_TEST(test_adopt_huge_sparse_file_is_not_read_and_limits_apply)
{
	struct test_conn c;
	struct test_daemon d;
	const char *path;
	cJSON *reply;
	uint64_t rss;
	char *name;
	int fd, big;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, CFG);
	path = adopt_file(&d, "huge.bin", TIB, 0666);
	test_conn_open_hello_as(&c, &d, TEST_NOBODY, TEST_NOBODY);
	fd = adopt_open_as_nobody(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	name = adopt_ok(&c, fd, "ro", NULL, &big);
	rss = test_daemon_rss_kib(&d);
	ck_assert_msg(rss < 64 * 1024, "the daemon's RSS is %llu KiB after adopting 1 TiB",
	              (unsigned long long)rss);
	reply = test_conn_callf(&c, "{'op':'resize','name':'%s','size':%llu}", name,
	                        (unsigned long long)(TIB + 4096));
	adopt_refused(reply, "EFBIG", EFBIG);
	close(big);
	close(fd);
	free(name);
	/* One byte more than max_region_size (1 TiB by default): refused. */
	path = adopt_file(&d, "huger.bin", TIB + 1, 0666);
	fd = adopt_open_as_nobody(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	adopt_refused(adopt_call(&c, fd, "ro", NULL), "EFBIG", EFBIG);
	close(fd);
	adopt_assert_serving(&c);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

/*
 * The daemon's descriptor of an adopted file is charged to the uid that sent it
 * (max_fds_per_uid): with 8, nobody's connection and 7 adopted files fill it, the 8th file is
 * EMFILE naming the budget. max_grants_per_client bounds adopt's grants as open's. Once the
 * connection is gone (its regions with it) nobody adopts again.
 */
START_TEST(test_adopt_descriptors_count_against_the_senders_budget)
{
	struct test_conn c;
	struct test_daemon d;
	char fname[32];
	cJSON *reply;
	int fds[8];

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{\"socket_mode\": \"0666\", \"max_fds_per_uid\": 8}");
	test_conn_open_hello_as(&c, &d, TEST_NOBODY, TEST_NOBODY);
	for (int i = 0; i < 8; i++) {
		snprintf(fname, sizeof(fname), "budget%d.bin", i);
		fds[i] = adopt_open_as_nobody(adopt_file(&d, fname, 4096, 0644), O_RDONLY);
		ck_assert_int_ge(fds[i], 0);
	}
	for (int i = 0; i < 7; i++)
		free(adopt_ok(&c, fds[i], "ro", NULL, NULL));
	reply = adopt_call(&c, fds[7], "ro", NULL);
	test_assert_error(reply, "EMFILE", EMFILE);
	ck_assert_msg(strstr(test_json_str(cJSON_GetObjectItemCaseSensitive(reply, "error"),
	                                   "message"), "max_fds_per_uid") != NULL,
	              "the refusal names the budget: %s", test_describe(reply));
	cJSON_Delete(reply);
	test_conn_close(&c);
	/* The limits of every grant hold for adopt too: max_grants_per_client (2 here). */
	test_daemon_stop(&d);
	test_daemon_start_shared(&d, "{\"socket_mode\": \"0666\", \"max_grants_per_client\": 2}");
	test_conn_open_hello_as(&c, &d, TEST_NOBODY, TEST_NOBODY);
	free(adopt_ok(&c, fds[0], "ro", NULL, NULL));
	free(adopt_ok(&c, fds[0], "ro", NULL, NULL));
	adopt_refused(adopt_call(&c, fds[1], "ro", NULL), "EAGAIN", EAGAIN);
	test_conn_close(&c);
	test_conn_open_hello_as(&c, &d, TEST_NOBODY, TEST_NOBODY);
	for (int i = 0; i < 8; i++) {
		if (i == 7) {
			/* Regions go as their holder's connection is torn down, asynchronously. */
			for (int t = 0; t < 100; t++) {
				reply = adopt_call(&c, fds[i], "ro", NULL);
				if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok")))
					break;
				cJSON_Delete(reply);
				reply = NULL;
				usleep(10000);
			}
			test_assert_ok(reply);
			close(test_conn_take_fd(&c));
			cJSON_Delete(reply);
		}
		close(fds[i]);
	}
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

/*
 * A daemon that is not root reopens an adopted file for a grant with its own user's rights
 * and never widens a descriptor by other means: a file its user may not read is refused
 * (EACCES, no region left behind), one it may read is adopted.
 */
START_TEST(test_adopt_unprivileged_daemon_refuses_what_its_user_cannot_open)
{
	struct test_daemon d;
	struct test_conn root;
	cJSON *reply;
	int fd;

	if (!test_is_root())
		return;
	test_daemon_init(&d, CFG);
	test_daemon_run_as(&d, TEST_NOBODY, TEST_NOBODY);
	test_daemon_launch(&d);
	test_conn_open_hello(&root, &d);
	fd = open(adopt_file(&d, "rootonly.bin", SIZE, 0600), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	reply = adopt_call(&root, fd, "ro", "rootonly");
	test_assert_error(reply, "EACCES", EACCES);
	cJSON_Delete(reply);
	close(fd);
	adopt_refused(test_conn_callf(&root, "{'op':'stat','name':'rootonly'}"), "ENOENT", ENOENT);
	fd = open(adopt_file(&d, "public.bin", SIZE, 0644), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	free(adopt_ok(&root, fd, "ro", "public", NULL));
	close(fd);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

/*
 * A file root can read and nobody cannot: root adopts it, nobody opening the region by name
 * is refused until root chmods the region, and then gets no more than root's descriptor
 * proved (read-only: rw refused even with mode 0666).
 */
START_TEST(test_adopt_private_file_does_not_leak_until_chmod)
{
	struct test_conn root, c;
	struct test_daemon d;
	cJSON *reply;
	char *name;
	int fd;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, CFG);
	test_conn_open_hello(&root, &d);
	test_conn_open_hello_as(&c, &d, TEST_NOBODY, TEST_NOBODY);
	fd = open(adopt_file(&d, "secret.bin", SIZE, 0600), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	name = adopt_ok(&root, fd, "ro", "secret", NULL);
	close(fd);

	reply = test_conn_callf(&c, "{'op':'open','name':'secret','mode':'ro'}");
	adopt_refused(reply, "EACCES", EACCES);
	reply = test_conn_callf(&c, "{'op':'subscribe','name':'secret'}");
	adopt_refused(reply, "EACCES", EACCES);
	reply = test_conn_callf(&c, "{'op':'chmod','name':'secret','perm':438}");
	adopt_refused(reply, "EPERM", EPERM);

	reply = test_conn_callf(&root, "{'op':'chmod','name':'secret','perm':438}");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	reply = test_conn_callf(&c, "{'op':'open','name':'secret','mode':'ro'}");
	test_assert_ok(reply);
	close(test_conn_take_fd(&c));
	cJSON_Delete(reply);
	reply = test_conn_callf(&c, "{'op':'open','name':'secret','mode':'rw'}");
	adopt_refused(reply, "EACCES", EACCES);
	reply = test_conn_callf(&c, "{'op':'resize','name':'secret','size':%u}", 2 * SIZE);
	adopt_refused(reply, "EACCES", EACCES);
	reply = test_conn_callf(&c, "{'op':'changed','name':'secret','offset':0,'length':1}");
	adopt_refused(reply, "EACCES", EACCES);
	free(name);
	test_conn_close(&c);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

/*
 * Access by name is capped by what the owner proved, even when the daemon holds more: nobody
 * adopts a 0644 file first with O_RDONLY (so it owns the region, proving read), root joins
 * with O_RDWR (the daemon now holds a writable descriptor), nobody chmods the region 0666. A
 * third uid then gets ro by name but not rw (the owner never proved write), nobody gets no rw
 * either (its own descriptor was read-only), and root keeps rw (its own proof).
 */
START_TEST(test_adopt_name_access_is_capped_by_the_owners_descriptors)
{
	struct test_conn root, owner, third;
	struct test_daemon d;
	const char *path;
	cJSON *reply;
	char *name;
	int fd;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, CFG);
	path = adopt_file(&d, "capped.bin", SIZE, 0644);
	test_conn_open_hello_as(&owner, &d, TEST_NOBODY, TEST_NOBODY);
	test_conn_open_hello_as(&third, &d, 12345, 12345);
	test_conn_open_hello(&root, &d);
	fd = adopt_open_as_nobody(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	name = adopt_ok(&owner, fd, "ro", "capped", NULL);
	close(fd);
	fd = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	free(adopt_ok(&root, fd, "rw", NULL, NULL));
	close(fd);
	reply = test_conn_callf(&owner, "{'op':'chmod','name':'capped','perm':438}");
	test_assert_ok(reply);
	cJSON_Delete(reply);

	reply = test_conn_callf(&third, "{'op':'open','name':'capped','mode':'ro'}");
	test_assert_ok(reply);
	close(test_conn_take_fd(&third));
	cJSON_Delete(reply);
	adopt_refused(test_conn_callf(&third, "{'op':'open','name':'capped','mode':'rw'}"),
	              "EACCES", EACCES);
	adopt_refused(test_conn_callf(&third, "{'op':'resize','name':'capped','size':%u}",
	                              2 * SIZE), "EACCES", EACCES);
	adopt_refused(test_conn_callf(&owner, "{'op':'open','name':'capped','mode':'rw'}"),
	              "EACCES", EACCES);
	reply = test_conn_callf(&root, "{'op':'open','name':'capped','mode':'rw'}");
	test_assert_ok(reply);
	close(test_conn_take_fd(&root));
	cJSON_Delete(reply);
	free(name);
	test_conn_close(&third);
	test_conn_close(&owner);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

/*
 * Behind the daemon's back: unlinked, the region keeps working (the inode lives); renamed,
 * nothing changes (a new adopt through the new path joins it); truncated, the size change
 * is noticed and announced; replaced by a new file at the path, a new adopt gets a new
 * region.
 */
START_TEST(test_adopt_unlink_rename_truncate_replace_behind_the_daemon)
{
	char moved[TEST_PATH_MAX + 32], *name, *again;
	struct test_conn c;
	struct test_daemon d;
	const char *path;
	const cJSON *region;
	cJSON *reply, *ev;
	int fd, gfd;
	char buf[sizeof(pattern)];

	test_daemon_start(&d, CFG);
	test_conn_open_hello(&c, &d);
	path = adopt_file(&d, "behind.bin", SIZE, 0600);
	fd = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	name = adopt_ok(&c, fd, "rw", NULL, &gfd);
	close(fd);

	/* Renamed: the same inode, the same region. */
	snprintf(moved, sizeof(moved), "%s/moved.bin", d.dir);
	ck_assert_int_eq(rename(path, moved), 0);
	fd = open(moved, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	again = adopt_ok(&c, fd, "ro", NULL, NULL);
	ck_assert_str_eq(again, name);
	free(again);
	close(fd);

	/* Unlinked: the holders keep working. */
	ck_assert_int_eq(unlink(moved), 0);
	ck_assert_int_eq(pwrite(gfd, pattern, sizeof(pattern), 0), (ssize_t)sizeof(pattern));
	reply = test_conn_callf(&c, "{'op':'flush','name':'%s'}", name);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	reply = test_daemon_stat(&d, name, &region);
	ck_assert_uint_eq(test_json_u64(region, "size"), SIZE);
	cJSON_Delete(reply);

	/* Truncated by a holder: noticed and announced to the holders. */
	ck_assert_int_eq(ftruncate(gfd, SIZE / 2), 0);
	ev = test_conn_expect_event(&c, "resized", TEST_WAIT_MS);
	ck_assert_uint_eq(test_json_u64(ev, "size"), SIZE / 2);
	cJSON_Delete(ev);

	/* Replaced: a new file at the old path is another inode, so another region. */
	path = adopt_file(&d, "behind.bin", SIZE, 0600);
	fd = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	again = adopt_ok(&c, fd, "ro", NULL, NULL);
	ck_assert_str_ne(again, name);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	ck_assert(memcmp(buf, pattern, sizeof(buf)) != 0);
	free(again);
	close(fd);
	close(gfd);
	free(name);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

/* mmapd_map_path(): one call maps a path; a second client mapping it joins the region. */
START_TEST(test_adopt_map_path_is_one_call)
{
	struct mmapd_open_opts rw = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW,
	                                            .flags = MMAPD_OPEN_CREATE, .size = SIZE);
	struct mmapd_open_opts ro = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RO);
	struct mmapd_region *a = NULL, *b = NULL;
	struct mmapd_client *ca, *cb;
	struct mmapd_region_info *info = NULL;
	struct test_daemon d;
	char path[TEST_PATH_MAX + 16];

	test_daemon_start(&d, CFG);
	snprintf(path, sizeof(path), "%s/mapped.bin", d.dir);
	ca = test_client_connect(&d, "map-a");
	cb = test_client_connect(&d, "map-b");
	ck_assert_msg(mmapd_map_path(ca, path, &rw, &a) == 0, "map rw: %s", mmapd_last_message());
	ck_assert_uint_eq(mmapd_region_size(a), SIZE);
	memcpy(mmapd_region_data(a), pattern, sizeof(pattern));
	ck_assert_msg(mmapd_map_path(cb, path, &ro, &b) == 0, "map ro: %s", mmapd_last_message());
	ck_assert_str_eq(mmapd_region_name(a), mmapd_region_name(b));
	ck_assert(memcmp(mmapd_region_data(b), pattern, sizeof(pattern)) == 0);
	ck_assert_int_eq(mmapd_stat(ca, mmapd_region_name(a), &info), 0);
	ck_assert(info->adopted);
	mmapd_region_info_free(info);
	ck_assert_int_eq(mmapd_map_path(cb, "/nonexistent/file", &ro, &b), -ENOENT);
	mmapd_region_close(b);
	mmapd_region_close(a);
	mmapd_disconnect(cb);
	mmapd_disconnect(ca);
	test_daemon_stop(&d);
}
END_TEST

/* What the reconnection test's handler saw. */
struct adopt_seen {
	int reconnected;
	int deleted;
};

static void adopt_seen_event(struct mmapd_client *client, const struct mmapd_event *ev,
                             void *userdata)
{
	struct adopt_seen *seen = userdata;

	(void)client;
	if (ev->type == MMAPD_EVENT_RECONNECTED)
		seen->reconnected++;
	else if (ev->type == MMAPD_EVENT_DELETED)
		seen->deleted++;
}

/* Checks that region, adopted, is held again by the daemon d restarted and still maps path. */
static void adopt_check_readopted(struct mmapd_client *c, struct mmapd_region *region,
                                  const char *path, uint64_t at)
{
	struct mmapd_region_info *info = NULL;
	char back[sizeof(pattern)];
	int fd;

	ck_assert_msg(mmapd_stat(c, mmapd_region_name(region), &info) == 0, "stat %s: %s",
	              mmapd_region_name(region), mmapd_last_message());
	ck_assert(info->adopted);
	ck_assert_uint_eq(info->grants, 1);
	mmapd_region_info_free(info);
	/* Written after the restart, through the old mapping, straight into the file at path. */
	memcpy(mmapd_region_data(region) + at, pattern, sizeof(pattern));
	ck_assert_int_eq(mmapd_region_flush(region, 0, 0), 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, back, sizeof(back), (off_t)at), (ssize_t)sizeof(back));
	close(fd);
	ck_assert(memcmp(back, pattern, sizeof(pattern)) == 0);
}

/*
 * The daemon keeps nothing of an adopted region: after it is killed (SIGKILL) and restarted on
 * the same socket, libmmapd adopts the file again with the descriptor it kept, under the same
 * name, for a region of mmapd_region_adopt() (whose caller closed its own descriptor at once)
 * and one of mmapd_map_path(); both are usable again, over the same files, and nothing is
 * reported deleted. Closing them closes the kept descriptors (the fixture counts them).
 */
START_TEST(test_adopt_regions_are_adopted_again_after_a_daemon_restart)
{
	struct mmapd_open_opts rw = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	struct adopt_seen seen = { 0 };
	struct mmapd_region *named = NULL, *mapped = NULL;
	struct mmapd_client *c;
	struct test_daemon d;
	char name[MMAPD_NAME_MAX + 1], npath[TEST_PATH_MAX + 64], mpath[TEST_PATH_MAX + 64];
	int fd, i;

	test_daemon_start(&d, CFG);
	snprintf(npath, sizeof(npath), "%s", adopt_file(&d, "kept.bin", SIZE, 0600));
	snprintf(mpath, sizeof(mpath), "%s", adopt_file(&d, "mapped.bin", SIZE, 0600));
	c = test_client_connect(&d, "readopt");
	mmapd_client_set_event_handler(c, adopt_seen_event, &seen);
	fd = open(npath, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(mmapd_region_adopt(c, fd, "kept", &rw, &named) == 0, "adopt: %s",
	              mmapd_last_message());
	close(fd);
	ck_assert_msg(mmapd_map_path(c, mpath, &rw, &mapped) == 0, "map: %s", mmapd_last_message());
	snprintf(name, sizeof(name), "%s", mmapd_region_name(mapped));

	test_daemon_kill(&d);
	test_daemon_restart(&d);
	for (i = 0; i < 100 && seen.reconnected == 0; i++)
		ck_assert_int_ge(mmapd_client_dispatch(c, 100), 0);
	ck_assert_int_eq(seen.reconnected, 1);
	ck_assert_int_eq(seen.deleted, 0);
	ck_assert_str_eq(mmapd_region_name(named), "kept");
	ck_assert_str_eq(mmapd_region_name(mapped), name);
	adopt_check_readopted(c, named, npath, 0);
	adopt_check_readopted(c, mapped, mpath, 100);
	/* Still the region's grant: resizing goes through and the file follows. */
	ck_assert_msg(mmapd_region_resize(named, 2 * SIZE, 0) == 0, "resize: %s",
	              mmapd_last_message());
	ck_assert_uint_eq(mmapd_region_size(named), 2 * SIZE);
	mmapd_region_close(mapped);
	mmapd_region_close(named);
	mmapd_disconnect(c);
	test_daemon_stop(&d);
}
END_TEST

static Suite *adopt_suite(void)
{
	Suite *s = suite_create("adopt");
	TCase *tc = tcase_create("adopt");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_adopt_same_file_from_two_processes_one_read_only);
	tcase_add_test(tc, test_adopt_locks_notify_resize_flush);
	tcase_add_test(tc, test_adopt_region_goes_with_its_last_holder);
	tcase_add_test(tc, test_adopt_hostile_descriptors_are_refused);
	tcase_add_test(tc, test_adopt_refuses_the_daemons_own_grant);
	tcase_add_test(tc, test_adopt_unseen_mount_refused_memfd_accepted);
	tcase_add_test(tc, test_adopt_descriptor_rule);
	tcase_add_test(tc, test_adopt_huge_sparse_file_is_not_read_and_limits_apply);
	tcase_add_test(tc, test_adopt_descriptors_count_against_the_senders_budget);
	tcase_add_test(tc, test_adopt_private_file_does_not_leak_until_chmod);
	tcase_add_test(tc, test_adopt_unprivileged_daemon_refuses_what_its_user_cannot_open);
	tcase_add_test(tc, test_adopt_name_access_is_capped_by_the_owners_descriptors);
	tcase_add_test(tc, test_adopt_unlink_rename_truncate_replace_behind_the_daemon);
	tcase_add_test(tc, test_adopt_map_path_is_one_call);
	tcase_add_test(tc, test_adopt_regions_are_adopted_again_after_a_daemon_restart);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(adopt_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
