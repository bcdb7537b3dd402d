/*
 * Fault tests: the daemon is killed with SIGKILL in the middle of the slow things it does on
 * its thread pool — creating a large region, growing one, flushing one — and started again
 * on the same data directory, which must then hold no half-made region under the name
 * (absent or full size), no temporary file, only valid metadata (nothing quarantined), and
 * every byte a flush reply acknowledged. Then the limits under stress: a daemon with 64
 * descriptors (RLIMIT_NOFILE, inherited from this process while it forks) answers running
 * out of them with EMFILE error replies and recovers once the clients go; 300 clients
 * connecting at once all get their hello replies and leave no descriptor behind.
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

/* Waits until a temporary file shows up (the creation is under way). */
static void wait_tmp(const struct test_daemon *d)
{
	int64_t deadline = test_now_ms() + TEST_WAIT_MS;

	while (!data_has_tmp(d)) {
		ck_assert_msg(test_now_ms() < deadline, "no temporary file appeared");
		usleep(1000);
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
	wait_tmp(&d);
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
	struct rlimit saved, low;
	struct test_daemon d;
	struct test_conn c[EXHAUST_CLIENTS];
	size_t i, errors = 0, grants = 0;
	uint64_t baseline;

	test_daemon_init(&d, NULL);
	ck_assert(getrlimit(RLIMIT_NOFILE, &saved) == 0);
	low = saved;
	low.rlim_cur = 64;
	/* The daemon inherits the low limit; this process has it only while it forks. */
	ck_assert(setrlimit(RLIMIT_NOFILE, &low) == 0);
	test_daemon_launch(&d);
	ck_assert(setrlimit(RLIMIT_NOFILE, &saved) == 0);

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

#define STORM_CLIENTS 300

START_TEST(test_faults_300_clients_at_once_all_get_hello_replies)
{
	static const char hello[] = "{\"id\":1,\"op\":\"hello\",\"version\":1}";
	struct test_daemon d;
	struct test_conn *c = calloc(STORM_CLIENTS, sizeof(*c));
	uint64_t baseline;
	size_t i;

	ck_assert(c != NULL);
	test_daemon_start(&d, NULL);
	baseline = test_daemon_status_u64(&d, "open_fds");
	/* Every client connects and sends its hello before any reply is read. */
	for (i = 0; i < STORM_CLIENTS; i++) {
		test_conn_open(&c[i], &d);
		ck_assert_int_eq(test_conn_send_frame(&c[i], hello, strlen(hello)), 0);
	}
	for (i = 0; i < STORM_CLIENTS; i++) {
		cJSON *reply = test_conn_recv_frame(&c[i]);

		test_assert_ok(reply);
		cJSON_Delete(reply);
	}
	for (i = 0; i < STORM_CLIENTS; i++)
		test_conn_close(&c[i]);
	free(c);
	ck_assert_uint_eq(test_daemon_wait_status(&d, "open_fds", baseline), baseline);
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
	tcase_add_test(tc, test_faults_300_clients_at_once_all_get_hello_replies);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(faults_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
