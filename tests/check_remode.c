/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of mmapd_region_set_mode(): an open region changes mode in place against a
 * real daemon, checked from real processes: a write after RW -> RO faults in a forked child,
 * the grant the daemon holds is the new mode's, RO -> RW writes reach other processes, the
 * daemon's access check refuses RO -> RW to another user (as a setuid child), COW writes stay
 * private, and a reconnection after a daemon restart reopens the region in its new mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"

#define NOBODY 65534u    /* uid and gid of nobody/nogroup on Debian */
#define PAGE 4096u

/* Starts a daemon whose socket other uids reach (the test directories are 0700). */
static void remode_daemon_start(struct test_daemon *d)
{
	char parent[TEST_PATH_MAX];

	test_daemon_init(d, "{\"socket_mode\": \"0666\"}");
	snprintf(parent, sizeof(parent), "%s", d->dir);
	ck_assert_int_eq(chmod(d->dir, 0711), 0);
	ck_assert_int_eq(chmod(dirname(parent), 0711), 0);
	test_daemon_launch(d);
}

static struct mmapd_region *remode_open(struct mmapd_client *c, const char *name,
                                        unsigned flags, enum mmapd_mode mode, uint64_t reserve)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(
		.flags = flags, .mode = mode, .size = PAGE, .reserve = reserve);
	struct mmapd_region *region = NULL;
	int r = mmapd_region_open(c, name, &o, &region);

	ck_assert_msg(r == 0, "open %s: %d (%s)", name, r, mmapd_last_message());
	return region;
}

/* Starts a daemon, connects to it as `who` and creates region "r" in `mode`. */
static struct mmapd_region *remode_begin(struct test_daemon *d, const char *who,
                                         struct mmapd_client **c, enum mmapd_mode mode,
                                         uint64_t reserve)
{
	remode_daemon_start(d);
	*c = test_client_connect(d, who);
	return remode_open(*c, "r", MMAPD_OPEN_CREATE, mode, reserve);
}

/* Closes the region (which must succeed), disconnects and stops the daemon. */
static void remode_end(struct test_daemon *d, struct mmapd_client *c, struct mmapd_region *region)
{
	mmapd_region_close(region);
	mmapd_disconnect(c);
	test_daemon_stop(d);
}

static void remode_set(struct mmapd_region *region, enum mmapd_mode mode, int err)
{
	int r = mmapd_region_set_mode(region, mode);

	ck_assert_msg(r == err, "set_mode %d: %d (%s), expected %d", (int)mode, r,
	              r < 0 ? mmapd_last_message() : "", err);
}

/* The access mode of the descriptor behind region: what the daemon granted. */
static int remode_fd_access(const struct mmapd_region *region)
{
	int fl = fcntl(mmapd_region_fd(region), F_GETFL);

	ck_assert_int_ge(fl, 0);
	return fl & O_ACCMODE;
}

static uint64_t remode_grants(struct mmapd_client *c, const char *name)
{
	struct mmapd_region_info *info;
	uint64_t grants;

	ck_assert_int_eq(mmapd_stat(c, name, &info), 0);
	grants = info->grants;
	mmapd_region_info_free(info);
	return grants;
}

/* Forks a child that writes one byte at p; returns its wait status. */
static int remode_child_write(volatile char *p)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		*p = 'x';
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

static void remode_assert_write_faults(volatile char *p)
{
	int status = remode_child_write(p);

	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
	              "a write to the read-only window did not fault (status 0x%x)", status);
}

/* Byte 0 of region name as a fresh connection of a forked child maps it read-only. */
static char remode_other_reads(const struct test_daemon *d, const char *name)
{
	int fds[2], status;
	char byte = 0;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct mmapd_client *c = NULL;
		struct mmapd_region *region = NULL;
		struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RO);

		if (mmapd_connect(d->sock, "reader", &c) < 0 ||
		    mmapd_region_open(c, name, &o, &region) < 0)
			_exit(1);
		byte = *(char *)mmapd_region_data(region);
		_exit(write(fds[1], &byte, 1) == 1 ? 0 : 2);
	}
	close(fds[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader status 0x%x", status);
	ck_assert_int_eq(read(fds[0], &byte, 1), 1);
	close(fds[0]);
	return byte;
}

/* Calls the daemon until region's window is len bytes long (the resize event was read). */
static void remode_wait_length(struct mmapd_client *c, const struct mmapd_region *region,
                               size_t len)
{
	for (int i = 0; i < 1000 && mmapd_region_length(region) != len; i++) {
		ck_assert_int_eq(mmapd_ping(c), 0);
		usleep(1000);
	}
	ck_assert_uint_eq(mmapd_region_length(region), len);
}

START_TEST(test_remode_rw_to_ro_keeps_pointer_and_faults_writes_also_after_growth)
{
	struct test_daemon d;
	struct mmapd_client *c;
	struct mmapd_region *region;
	char *p;

	region = remode_begin(&d, "remode", &c, MMAPD_MODE_RW, 16 * PAGE);
	p = mmapd_region_data(region);
	p[0] = 'A';
	ck_assert_int_eq(remode_fd_access(region), O_RDWR);
	ck_assert_int_eq(WEXITSTATUS(remode_child_write(p + 1)), 0);

	remode_set(region, MMAPD_MODE_RO, 0);
	ck_assert_ptr_eq(mmapd_region_data(region), p);
	ck_assert_int_eq(mmapd_region_mode(region), MMAPD_MODE_RO);
	ck_assert_int_eq(remode_fd_access(region), O_RDONLY);
	ck_assert_uint_eq(remode_grants(c, "r"), 1);
	ck_assert_int_eq(p[0], 'A');
	remode_assert_write_faults(p);
	ck_assert_int_eq(mmapd_region_write(region, 0, "y", 1), -EACCES);
	/* The same mode again does nothing. */
	remode_set(region, MMAPD_MODE_RO, 0);
	ck_assert_uint_eq(remode_grants(c, "r"), 1);

	/* Pages growth maps in later come in read-only too. */
	ck_assert_int_eq(mmapd_resize(c, "r", 2 * PAGE, 0), 0);
	remode_wait_length(c, region, 2 * PAGE);
	ck_assert_ptr_eq(mmapd_region_data(region), p);
	ck_assert_int_eq(p[PAGE + 1], 0);
	remode_assert_write_faults(p + PAGE + 1);

	remode_set(region, (enum mmapd_mode)7, -EINVAL);
	ck_assert_int_eq(mmapd_region_set_mode(NULL, MMAPD_MODE_RW), -EINVAL);
	remode_end(&d, c, region);
}
END_TEST

START_TEST(test_remode_ro_to_rw_writes_reach_another_process)
{
	struct test_daemon d;
	struct mmapd_client *c;
	struct mmapd_region *region;
	char *p;

	region = remode_begin(&d, "remode", &c, MMAPD_MODE_RO, 0);
	p = mmapd_region_data(region);
	ck_assert_int_eq(remode_fd_access(region), O_RDONLY);
	remode_assert_write_faults(p);

	remode_set(region, MMAPD_MODE_RW, 0);
	ck_assert_ptr_eq(mmapd_region_data(region), p);
	ck_assert_int_eq(mmapd_region_mode(region), MMAPD_MODE_RW);
	ck_assert_int_eq(remode_fd_access(region), O_RDWR);
	ck_assert_uint_eq(remode_grants(c, "r"), 1);
	p[0] = 'W';
	ck_assert_int_eq(remode_other_reads(&d, "r"), 'W');
	ck_assert_int_eq(mmapd_region_write(region, 0, "V", 1), 0);
	ck_assert_int_eq(remode_other_reads(&d, "r"), 'V');

	remode_end(&d, c, region);
}
END_TEST

START_TEST(test_remode_rw_to_cow_writes_stay_private_and_back_to_ro_drops_them)
{
	struct test_daemon d;
	struct mmapd_client *c;
	struct mmapd_region *region;
	char *p;

	region = remode_begin(&d, "remode", &c, MMAPD_MODE_RW, 0);
	p = mmapd_region_data(region);
	p[0] = 'A';

	remode_set(region, MMAPD_MODE_COW, 0);
	ck_assert_ptr_eq(mmapd_region_data(region), p);
	ck_assert_int_eq(mmapd_region_mode(region), MMAPD_MODE_COW);
	ck_assert_int_eq(p[0], 'A');
	p[0] = 'B';
	ck_assert_int_eq(p[0], 'B');
	ck_assert_int_eq(remode_other_reads(&d, "r"), 'A');

	remode_set(region, MMAPD_MODE_RO, 0);
	ck_assert_ptr_eq(mmapd_region_data(region), p);
	ck_assert_int_eq(p[0], 'A');
	ck_assert_uint_eq(remode_grants(c, "r"), 1);

	remode_end(&d, c, region);
}
END_TEST

/*
 * In a forked child: becomes nobody, connects as "nobody" and opens region "r" in mode.
 * Returns 0, or the child's exit status: 10 if it could not become nobody, 11 if it could
 * not connect or open.
 */
static int remode_nobody_open(const struct test_daemon *d, enum mmapd_mode mode,
                              struct mmapd_client **c, struct mmapd_region **region)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = mode);

	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
		return 10;
	if (mmapd_connect(d->sock, "nobody", c) < 0 || mmapd_region_open(*c, "r", &o, region) < 0)
		return 11;
	return 0;
}

/* As nobody: open root's 0644 region read-only; RO -> RW is refused and nothing changes. */
static int remode_nobody_refused(const struct test_daemon *d)
{
	struct mmapd_client *c = NULL;
	struct mmapd_region *region = NULL;
	char *p;
	int r = remode_nobody_open(d, MMAPD_MODE_RO, &c, &region);

	if (r != 0)
		return r;
	p = mmapd_region_data(region);
	if (mmapd_region_set_mode(region, MMAPD_MODE_RW) != -EACCES)
		return 12;
	if (mmapd_region_data(region) != p || mmapd_region_mode(region) != MMAPD_MODE_RO ||
	    (fcntl(mmapd_region_fd(region), F_GETFL) & O_ACCMODE) != O_RDONLY)
		return 13;
	if (p[0] != 'A')
		return 14;
	/* Still granted: COW needs only read access. */
	if (mmapd_region_set_mode(region, MMAPD_MODE_COW) != 0 || mmapd_region_data(region) != p)
		return 15;
	p[0] = 'C';
	mmapd_region_close(region);
	mmapd_disconnect(c);
	return 0;
}

START_TEST(test_remode_ro_to_rw_refused_for_another_owners_0644_region)
{
	struct test_daemon d;
	struct mmapd_client *c;
	struct mmapd_region *region;
	pid_t pid;

	if (!test_is_root())
		return;
	region = remode_begin(&d, "root", &c, MMAPD_MODE_RW, 0);
	*(char *)mmapd_region_data(region) = 'A';
	ck_assert_int_eq(mmapd_chmod(c, "r", 0644), 0);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(remode_nobody_refused(&d));
	test_child_wait(pid, 30000);
	ck_assert_int_eq(*(char *)mmapd_region_data(region), 'A');
	ck_assert_uint_eq(remode_grants(c, "r"), 1);

	remode_end(&d, c, region);
}
END_TEST

/*
 * As nobody: open root's 0666 region read-write and make it read-only; tell the parent (which
 * then allows only reading and restarts the daemon) and, once it says go, check that the
 * reconnection kept the region: only a reopen in the new mode is granted now, while one in
 * the old mode gives the region up (set_mode is then -ESTALE).
 */
static int remode_nobody_reconnects(const struct test_daemon *d, int ready, int go)
{
	struct mmapd_client *c = NULL;
	struct mmapd_region *region = NULL;
	struct mmapd_region_info *info = NULL;
	uint64_t grants = 0;
	char *p, byte = 0;
	int r = remode_nobody_open(d, MMAPD_MODE_RW, &c, &region);

	if (r != 0)
		return r;
	mmapd_client_set_reconnect(c, 30000);
	p = mmapd_region_data(region);
	if (mmapd_region_set_mode(region, MMAPD_MODE_RO) != 0)
		return 12;
	if (write(ready, "r", 1) != 1 || read(go, &byte, 1) != 1)
		return 13;
	if (mmapd_ping(c) == 0 && mmapd_stat(c, "r", &info) == 0)
		grants = info->grants;
	mmapd_region_info_free(info);
	if (grants != 1)
		return 14;
	if (mmapd_region_data(region) != p || mmapd_region_mode(region) != MMAPD_MODE_RO ||
	    p[0] != 'A')
		return 15;
	if (mmapd_region_set_mode(region, MMAPD_MODE_COW) != 0)
		return 16;
	if (mmapd_region_set_mode(region, MMAPD_MODE_RW) != -EACCES)
		return 17;
	mmapd_region_close(region);
	mmapd_disconnect(c);
	return 0;
}

START_TEST(test_remode_reconnection_reopens_in_the_new_mode)
{
	struct test_daemon d;
	struct mmapd_client *c;
	struct mmapd_region *region;
	int ready[2], go[2];
	char byte;
	pid_t pid;

	if (!test_is_root())
		return;
	region = remode_begin(&d, "root", &c, MMAPD_MODE_RW, 0);
	*(char *)mmapd_region_data(region) = 'A';
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_chmod(c, "r", 0666), 0);
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(remode_nobody_reconnects(&d, ready[1], go[0]));
	close(ready[1]);
	close(go[0]);
	ck_assert_int_eq(read(ready[0], &byte, 1), 1);
	ck_assert_int_eq(mmapd_chmod(c, "r", 0644), 0);
	mmapd_disconnect(c);
	test_daemon_kill(&d);
	test_daemon_restart(&d);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	test_child_wait(pid, 30000);
	close(ready[0]);
	close(go[1]);
	test_daemon_stop(&d);
}
END_TEST

static Suite *remode_suite(void)
{
	Suite *s = suite_create("remode");
	TCase *tc = tcase_create("set_mode");

	tcase_add_test(tc, test_remode_rw_to_ro_keeps_pointer_and_faults_writes_also_after_growth);
	tcase_add_test(tc, test_remode_ro_to_rw_writes_reach_another_process);
	tcase_add_test(tc, test_remode_rw_to_cow_writes_stay_private_and_back_to_ro_drops_them);
	tcase_add_test(tc, test_remode_ro_to_rw_refused_for_another_owners_0644_region);
	tcase_add_test(tc, test_remode_reconnection_reopens_in_the_new_mode);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(remode_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
