/* SPDX-License-Identifier: MIT */
/*
 * Fault tests: the daemon is killed with SIGKILL in the middle of the slow things it does on
 * its thread pool — creating a large region, growing one, flushing one — and started again
 * on the same data directory, which must then hold no half-made region under the name
 * (absent or full size), no temporary file, only valid metadata (nothing quarantined), and
 * every byte a flush reply acknowledged. Then the limits under stress: a daemon with 64
 * descriptors (RLIMIT_NOFILE, set on it with prlimit once it has started) answers running
 * out of them with EMFILE error replies and recovers once the clients go; 1,000 clients
 * connecting at once (nonblocking connects from this one process; the daemon's default
 * max_clients is 1024) all get their hello replies and leave no descriptor behind. And a
 * mapper SIGKILLed in the middle of a shrink it never acknowledged counts as having
 * acknowledged: the shrink completes and the mappers that did answer see it, without SIGBUS.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

#define BIG_SIZE (512ull << 20)

/* True when the data directory holds a hidden temporary file of a creation. */
static bool data_has_tmp(const struct test_daemon *d)
{
	DIR *dir = opendir(d->data);
	struct dirent *de;
	bool found = false;

	ck_assert(dir != NULL);
	while ((de = readdir(dir)) != NULL)
		found |= strncmp(de->d_name, ".mmapd-tmp-", 11) == 0;
	closedir(dir);
	return found;
}

static int64_t file_size(const struct test_daemon *d, const char *name);

/*
 * Waits until the creation of name is under way (its temporary file shows up) or, on a disk
 * fast enough to finish before we look, done (the file is there under its name).
 */
static void wait_creation(const struct test_daemon *d, const char *name)
{
	int64_t deadline = test_now_ms() + TEST_WAIT_MS;

	while (!data_has_tmp(d) && file_size(d, name) < 0) {
		ck_assert_msg(test_now_ms() < deadline, "the creation of '%s' never started", name);
		usleep(200);
	}
}

/*
 * After a restart: no temporary file in the data directory, every metadata file valid JSON,
 * nothing quarantined.
 */
static void assert_clean(const struct test_daemon *d)
{
	char path[TEST_PATH_MAX + 64];
	struct dirent *de;
	DIR *dir;

	ck_assert_msg(!data_has_tmp(d), "a temporary file survived the restart");
	snprintf(path, sizeof(path), "%s/.mmapd/quarantine", d->data);
	dir = opendir(path);
	ck_assert(dir != NULL);
	while ((de = readdir(dir)) != NULL)
		ck_assert_msg(de->d_name[0] == '.', "quarantined: %s", de->d_name);
	closedir(dir);
	snprintf(path, sizeof(path), "%s/.mmapd/meta", d->data);
	dir = opendir(path);
	ck_assert(dir != NULL);
	while ((de = readdir(dir)) != NULL) {
		char file[TEST_PATH_MAX + 384], text[65536];
		cJSON *obj;
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || strcmp(de->d_name, "..") == 0))
			continue;
		ck_assert_msg(de->d_name[0] != '.', "temporary metadata file %s left", de->d_name);
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		fd = open(file, O_RDONLY | O_CLOEXEC);
		ck_assert(fd >= 0);
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
		ck_assert(n > 0);
		text[n] = '\0';
		obj = cJSON_Parse(text);
		ck_assert_msg(cJSON_IsObject(obj), "metadata %s is not a JSON object", de->d_name);
		cJSON_Delete(obj);
	}
	closedir(dir);
}

/* The size of region file name, or -1 when there is none. */
static int64_t file_size(const struct test_daemon *d, const char *name)
{
	char path[TEST_PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", d->data, name);
	return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

START_TEST(test_faults_sigkill_during_creation_leaves_no_half_made_region)
{
	struct test_daemon d;
	struct test_conn c;
	int64_t size;
	cJSON *reply;

	test_daemon_start(&d, NULL);
	test_conn_open_hello(&c, &d);
	(void)test_conn_sendf(&c, "{'op':'open','name':'big','mode':'rw','create':true,'size':%llu}",
	                      (unsigned long long)BIG_SIZE);
	wait_creation(&d, "big");
	test_daemon_kill(&d);
	test_conn_close(&c);

	test_daemon_restart(&d);
	assert_clean(&d);
	size = file_size(&d, "big");
	ck_assert_msg(size == -1 || size == (int64_t)BIG_SIZE, "half-made region of %lld bytes",
	              (long long)size);
	/* The name is usable: created now (or opened, if the creation had finished). */
	test_conn_open_hello(&c, &d);
	reply = test_conn_callf(&c, "{'op':'open','name':'big','mode':'ro','create':true,"
	                        "'size':4096,'sparse':true}");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_faults_sigkill_during_growth_keeps_the_region_usable)
{
	struct test_daemon d;
	struct test_conn c;
	int64_t size;
	cJSON *reply;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "grow", 4096, false);
	test_conn_open_hello(&c, &d);
	(void)test_conn_sendf(&c, "{'op':'resize','name':'grow','size':%llu}",
	                      (unsigned long long)BIG_SIZE);
	/* Let the fallocate get going, then kill. */
	usleep(2000);
	test_daemon_kill(&d);
	test_conn_close(&c);

	test_daemon_restart(&d);
	assert_clean(&d);
	size = file_size(&d, "grow");
	ck_assert_msg(size >= 4096 && size <= (int64_t)BIG_SIZE, "size %lld", (long long)size);
	test_conn_open_hello(&c, &d);
	reply = test_conn_callf(&c, "{'op':'resize','name':'grow','size':%llu}",
	                        (unsigned long long)(1u << 20));
	test_assert_ok(reply);
	cJSON_Delete(reply);
	test_conn_close(&c);
	ck_assert_int_eq(file_size(&d, "grow"), 1 << 20);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_faults_sigkill_during_flush_keeps_acknowledged_data)
{
	struct test_daemon d;
	struct test_conn c;
	cJSON *reply;
	char *p;
	int fd;
	size_t len = 64u << 20, off;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "durable", len, false);
	test_conn_open_hello(&c, &d);
	reply = test_conn_callf(&c, "{'op':'open','name':'durable','mode':'rw'}");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	fd = test_conn_take_fd(&c);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(p != MAP_FAILED);
	memcpy(p, "acknowledged", 12);
	reply = test_conn_callf(&c, "{'op':'flush','name':'durable'}");
	test_assert_ok(reply);
	cJSON_Delete(reply);

	/* Much more dirty data, so that the next fdatasync takes a while; kill during it. */
	for (off = 4096; off < len; off += 4096)
		p[off] = (char)off;
	(void)test_conn_sendf(&c, "{'op':'flush','name':'durable'}");
	usleep(2000);
	test_daemon_kill(&d);
	munmap(p, len);
	close(fd);
	test_conn_close(&c);

	test_daemon_restart(&d);
	assert_clean(&d);
	ck_assert_int_eq(file_size(&d, "durable"), (int64_t)len);
	test_conn_open_hello(&c, &d);
	reply = test_conn_callf(&c, "{'op':'open','name':'durable','mode':'ro'}");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	fd = test_conn_take_fd(&c);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert(p != MAP_FAILED);
	ck_assert(memcmp(p, "acknowledged", 12) == 0);
	munmap(p, 4096);
	close(fd);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

#define EXHAUST_CLIENTS 8

START_TEST(test_faults_descriptor_exhaustion_is_answered_and_recovered_from)
{
	const struct rlimit low = { .rlim_cur = 64, .rlim_max = 64 };
	struct test_daemon d;
	struct test_conn c[EXHAUST_CLIENTS];
	size_t i, errors = 0, grants = 0;
	uint64_t baseline;

	test_daemon_start(&d, NULL);
	/* The daemon raised its soft limit to the hard one at start: lower both on it now. */
	ck_assert(prlimit(d.pid, RLIMIT_NOFILE, &low, NULL) == 0);

	baseline = test_daemon_status_u64(&d, "open_fds");
	for (i = 0; i < EXHAUST_CLIENTS; i++)
		test_conn_open_hello(&c[i], &d);
	/*
	 * Each region created and kept granted holds one of the daemon's descriptors: go on until
	 * the daemon runs out, which must come back as error replies.
	 */
	for (size_t n = 0; n < 200 && errors < 4; n++) {
		struct test_conn *cn = &c[n % EXHAUST_CLIENTS];
		cJSON *reply = test_conn_callf(cn, "{'op':'open','name':'r%zu','mode':'ro',"
		                               "'create':true,'size':4096,'sparse':true}", n);

		if (test_json_bool(reply, "ok")) {
			close(test_conn_take_fd(cn));
			grants++;
		} else {
			test_assert_error(reply, "EMFILE", EMFILE);
			errors++;
		}
		cJSON_Delete(reply);
	}
	ck_assert_msg(errors > 0, "no EMFILE after %zu grants", grants);
	for (i = 0; i < EXHAUST_CLIENTS; i++)
		test_conn_close(&c[i]);
	test_daemon_assert_alive(&d);
	ck_assert_uint_eq(test_daemon_wait_status(&d, "open_fds", baseline), baseline);
	test_daemon_stop(&d);
}
END_TEST

#define STORM_CLIENTS 1000

/*
 * Every client connects (nonblocking: none waits for the daemon to accept) and sends its
 * hello before any reply is read; then every reply is collected with one poll() over all of
 * them. Needs about 1,000 descriptors here and in the daemon (which inherits this limit).
 */
START_TEST(test_faults_1000_clients_at_once_all_get_hello_replies)
{
	static const char hello[] = "{\"id\":1,\"op\":\"hello\",\"version\":1}";
	unsigned char frame[4 + sizeof(hello)];
	struct test_daemon d;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd *pfd = calloc(STORM_CLIENTS, sizeof(*pfd));
	size_t *got = calloc(STORM_CLIENTS, sizeof(*got));
	char (*buf)[2048] = calloc(STORM_CLIENTS, sizeof(*buf));
	struct rlimit rl;
	uint64_t baseline;
	size_t i, sent = 0, done = 0, len = strlen(hello);
	int64_t deadline;

	ck_assert(pfd != NULL && got != NULL && buf != NULL);
	ck_assert(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	if (rl.rlim_cur < STORM_CLIENTS + 128) {
		rl.rlim_cur = rl.rlim_max < STORM_CLIENTS + 128 ? rl.rlim_max : STORM_CLIENTS + 128;
		ck_assert(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	}
	ck_assert_msg(rl.rlim_cur >= STORM_CLIENTS + 64, "RLIMIT_NOFILE %llu is too low for %d "
	              "clients", (unsigned long long)rl.rlim_cur, STORM_CLIENTS);
	frame[0] = (unsigned char)(len >> 24);
	frame[1] = (unsigned char)(len >> 16);
	frame[2] = (unsigned char)(len >> 8);
	frame[3] = (unsigned char)len;
	memcpy(frame + 4, hello, len);

	test_daemon_start(&d, NULL);
	baseline = test_daemon_status_u64(&d, "open_fds");
	ck_assert(strlen(d.sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, d.sock, strlen(d.sock) + 1);
	for (i = 0; i < STORM_CLIENTS; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		ck_assert_msg(fd >= 0, "socket %zu: %s", i, strerror(errno));
		/* A Unix stream connect either completes or fails with EAGAIN (backlog full). */
		while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			ck_assert_msg(errno == EAGAIN || errno == EINTR, "connect %zu: %s", i,
			              strerror(errno));
			usleep(200);
		}
		pfd[i].fd = fd;
		pfd[i].events = POLLIN;
	}
	/* All connected: now every hello, still before any reply is read. */
	for (i = 0; i < STORM_CLIENTS; i++) {
		ssize_t n = send(pfd[i].fd, frame, 4 + len, MSG_NOSIGNAL);

		ck_assert_msg(n == (ssize_t)(4 + len), "hello %zu: %s", i, n < 0 ? strerror(errno) : "short");
		sent++;
	}
	ck_assert_uint_eq(sent, STORM_CLIENTS);
	deadline = test_now_ms() + 20000;
	while (done < STORM_CLIENTS) {
		int n = poll(pfd, STORM_CLIENTS, 1000);

		ck_assert_msg(test_now_ms() < deadline, "%zu of %d hello replies after 20 s", done,
		              STORM_CLIENTS);
		ck_assert(n >= 0 || errno == EINTR);
		for (i = 0; n > 0 && i < STORM_CLIENTS; i++) {
			ssize_t r;

			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = recv(pfd[i].fd, buf[i] + got[i], sizeof(buf[i]) - 1 - got[i], 0);
			ck_assert_msg(r > 0, "client %zu: %s before its hello reply", i,
			              r == 0 ? "end of stream" : strerror(errno));
			got[i] += (size_t)r;
			if (got[i] >= 4) {
				size_t flen = (size_t)buf[i][0] << 24 | (size_t)(unsigned char)buf[i][1] << 16 |
				              (size_t)(unsigned char)buf[i][2] << 8 | (unsigned char)buf[i][3];

				ck_assert_msg(flen < sizeof(buf[i]) - 4, "client %zu: reply of %zu bytes", i, flen);
				if (got[i] >= 4 + flen) {
					cJSON *reply;

					buf[i][4 + flen] = '\0';
					reply = cJSON_Parse(buf[i] + 4);
					ck_assert_msg(reply != NULL, "client %zu: reply %s", i, buf[i] + 4);
					test_assert_ok(reply);
					test_assert_id(reply, 1);
					cJSON_Delete(reply);
					pfd[i].fd = -pfd[i].fd - 1;   /* poll ignores it; still to close */
					done++;
				}
			}
		}
	}
	ck_assert_uint_eq(test_daemon_status_u64(&d, "clients"), STORM_CLIENTS + 1);
	for (i = 0; i < STORM_CLIENTS; i++)
		close(-pfd[i].fd - 1);
	free(pfd);
	free(got);
	free(buf);
	ck_assert_uint_eq(test_daemon_wait_status(&d, "open_fds", baseline), baseline);
	test_daemon_stop(&d);
}
END_TEST

#define SHRINK_MAPPERS 3

/*
 * A region mapped by three session processes that dispatch (and touch every page of their
 * mapping once a millisecond throughout) and one deaf one that never acknowledges. A shrink
 * with a 60 s shrink_timeout_ms waits for the deaf one; SIGKILL it, and the shrink completes
 * at once: a dead mapper counts as having acknowledged. The others see shrinking, then
 * resized, keep the part that stays, and none of them died of SIGBUS (test_sess_end asserts).
 */
START_TEST(test_faults_mapper_sigkilled_mid_shrink_counts_as_acknowledged)
{
	struct test_daemon d;
	struct test_sess s[SHRINK_MAPPERS], deaf;
	struct test_conn r;
	uint64_t rid, fds0;
	int64_t t_kill;
	cJSON *reply, *ev;
	char want[256];
	int i;

	test_daemon_start(&d, "{\"shrink_timeout_ms\": 60000}");
	test_daemon_create(&d, "victim", 256 * 1024, false);
	fds0 = test_daemon_status_u64(&d, "open_fds");
	for (i = 0; i < SHRINK_MAPPERS; i++) {
		test_sess_start(&s[i], &d, NULL);
		(void)test_sess_ok(&s[i], "open victim rw");
		(void)test_sess_ok(&s[i], "write 0 %d keep-%d", 100 + 16 * i, i);
		(void)test_sess_ok(&s[i], "write 0 200000 tail");
		(void)test_sess_ok(&s[i], "touch-loop on");
	}
	test_sess_start(&deaf, &d, NULL);
	(void)test_sess_ok(&deaf, "open victim rw");
	(void)test_sess_ok(&deaf, "deaf");

	test_conn_open_hello(&r, &d);
	rid = test_conn_sendf(&r, "{'op':'resize','name':'victim','size':%llu}", 64ull * 1024);
	/* The cooperating mappers are asked (and answer); the shrink still waits for the deaf one. */
	for (i = 0; i < SHRINK_MAPPERS; i++) {
		char *e = test_sess_find_event(&s[i], "shrinking victim size=65536 ", TEST_WAIT_MS);

		ck_assert_msg(e != NULL, "mapper %d heard no shrinking event", i);
		free(e);
	}
	ev = test_conn_event(&r, 300);
	ck_assert_msg(ev == NULL, "the shrink ended while a mapper had not answered: %s",
	              test_describe(ev));
	ck_assert_int_eq(file_size(&d, "victim"), 256 * 1024);

	t_kill = test_now_ms();
	ck_assert_int_eq(test_sess_kill(&deaf, SIGKILL), 128 + SIGKILL);
	reply = test_conn_reply(&r, rid, TEST_WAIT_MS);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	ck_assert_msg(test_now_ms() - t_kill < 3000, "the shrink ended %lld ms after its laggard "
	              "died", (long long)(test_now_ms() - t_kill));
	ck_assert_int_eq(file_size(&d, "victim"), 64 * 1024);

	for (i = 0; i < SHRINK_MAPPERS; i++) {
		char *e = test_sess_find_event(&s[i], "resized victim size=65536 old=262144 ",
		                               TEST_WAIT_MS);

		ck_assert_msg(e != NULL, "mapper %d heard no resized event", i);
		free(e);
		ck_assert_msg(test_line_u64(test_sess_ok(&s[i], "touch-loop off"), "touches") > 0,
		              "mapper %d never touched its mapping", i);
		ck_assert_uint_eq(test_line_u64(test_sess_ok(&s[i], "ptr 0"), "len"), 64 * 1024);
		ck_assert_str_eq(test_sess_ok(&s[i], "touch 0"), " pages=16");
		snprintf(want, sizeof(want), " keep-%d", (i + 1) % SHRINK_MAPPERS);
		ck_assert_str_eq(test_sess_ok(&s[i], "read 0 %d 6", 100 + 16 * ((i + 1) % SHRINK_MAPPERS)),
		                 want);
	}
	for (i = 0; i < SHRINK_MAPPERS; i++)
		ck_assert_int_eq(test_sess_end(&s[i]), 0);
	test_conn_close(&r);
	ck_assert_uint_eq(test_daemon_wait_status(&d, "open_fds", fds0), fds0);
	ck_assert_uint_eq(test_daemon_status_u64(&d, "grants"), 0);
	test_daemon_stop(&d);
}
END_TEST

static Suite *faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("faults");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_faults_sigkill_during_creation_leaves_no_half_made_region);
	tcase_add_test(tc, test_faults_sigkill_during_growth_keeps_the_region_usable);
	tcase_add_test(tc, test_faults_sigkill_during_flush_keeps_acknowledged_data);
	tcase_add_test(tc, test_faults_descriptor_exhaustion_is_answered_and_recovered_from);
	tcase_add_test(tc, test_faults_1000_clients_at_once_all_get_hello_replies);
	tcase_add_test(tc, test_faults_mapper_sigkilled_mid_shrink_counts_as_acknowledged);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(faults_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
