/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of executable maps (docs/protocol.md, "Executable maps"): the daemon's
 * allow_exec, the x bits of a region's mode as the consent, checked for the peer's class
 * (root only when some x bit is set), anonymous regions that are executable only when created
 * so, file regions whose x bits come only from mmapd's metadata, and libmmapd mapping with
 * PROT_EXEC only after the grant: the mapping really is executable (its /proc/self/maps line
 * says x, and a `ret` instruction written into the region is called), and asked for again
 * when libmmapd reopens the region after the daemon restarted.
 *
 * Another user is real: a forked child drops to another uid (setresuid, as root) and opens
 * the region through libmmapd itself. Without root those tests are skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"

#define STRANGER 65533u   /* a uid and gid in no group of interest */

#define SEAL_EXEC 0x0020   /* F_SEAL_EXEC, which older headers lack */
#define MFD_NOEXEC_SEAL_FLAG 0x0008u

#define CFG_EXEC "{\"allow_exec\": true, \"socket_mode\": \"0666\"}"

/* The permission string ("rwxs") of the /proc/self/maps line holding addr, into perms[5]. */
static void maps_perms(const void *addr, char perms[5])
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	unsigned long lo, hi;

	ck_assert_ptr_nonnull(f);
	strcpy(perms, "none");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && (unsigned long)addr >= lo &&
		    (unsigned long)addr < hi)
			break;
		strcpy(perms, "none");
	}
	fclose(f);
}

/* True when memfd_create knows MFD_NOEXEC_SEAL (Linux 6.3+). */
static bool kernel_has_noexec_seal(void)
{
	int fd = memfd_create("probe", MFD_CLOEXEC | MFD_NOEXEC_SEAL_FLAG);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Writes a function that just returns into code (unless it is there already) and calls it. */
static void run_ret(void *code)
{
	void (*fn)(void);

#if defined(__x86_64__) || defined(__i386__)
	static const unsigned char ret[] = { 0xc3 };
#elif defined(__aarch64__)
	static const unsigned char ret[] = { 0xc0, 0x03, 0x5f, 0xd6 };
#else
	return;   /* no instruction known: the maps check stands alone */
#endif
	if (memcmp(code, ret, sizeof(ret)) != 0)
		memcpy(code, ret, sizeof(ret));
	__builtin___clear_cache((char *)code, (char *)code + sizeof(ret));
	memcpy(&fn, &code, sizeof(fn));
	fn();
}

static int exec_open(struct mmapd_client *client, const char *name, unsigned flags,
                     enum mmapd_mode mode, uint64_t size, struct mmapd_region **ret)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(.flags = flags, .mode = mode, .size = size);

	return mmapd_region_open(client, name, &opts, ret);
}

static uint64_t exec_perm(const struct test_daemon *d, const char *name)
{
	const cJSON *region;
	cJSON *reply = test_daemon_stat(d, name, &region);
	uint64_t perm = test_json_u64(region, "perm");

	cJSON_Delete(reply);
	return perm;
}

START_TEST(test_exec_refused_while_allow_exec_is_false)
{
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct test_daemon d;
	struct test_conn c;

	test_daemon_start(&d, NULL);
	test_conn_open_hello(&c, &d);
	test_reply_error(test_conn_callf(&c, "{'op':'open','name':'a','mode':'rw','create':true,"
	                                 "'size':4096,'anonymous':true,'exec':true}"),
	                 "EPERM", EPERM, "allow_exec is false");
	/* Refused before creating anything. */
	test_reply_error(test_conn_callf(&c, "{'op':'stat','name':'a'}"), "ENOENT", ENOENT, "");
	test_daemon_create(&d, "f", 4096, false);
	test_reply_error(test_conn_callf(&c, "{'op':'open','name':'f','exec':true}"), "EPERM",
	                 EPERM, "allow_exec");
	test_conn_close(&c);

	client = test_client_connect(&d, "check_exec");
	ck_assert_int_eq(exec_open(client, "f", MMAPD_OPEN_EXEC, MMAPD_MODE_RO, 0, &region), -EPERM);
	ck_assert_ptr_nonnull(strstr(mmapd_last_message(), "allow_exec"));
	ck_assert_int_eq(exec_open(client, "b", MMAPD_OPEN_CREATE | MMAPD_OPEN_ANONYMOUS |
	                           MMAPD_OPEN_EXEC, MMAPD_MODE_RW, 4096, &region), -EPERM);
	mmapd_disconnect(client);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_exec_anonymous_region_created_executable_runs_code)
{
	struct mmapd_client *client;
	struct mmapd_region *region, *ro;
	struct mmapd_region_info *info = NULL;
	struct test_daemon d;
	char perms[5];

	test_daemon_start(&d, CFG_EXEC);
	client = test_client_connect(&d, "check_exec");
	ck_assert_int_eq(exec_open(client, "code", MMAPD_OPEN_CREATE | MMAPD_OPEN_ANONYMOUS |
	                           MMAPD_OPEN_EXEC, MMAPD_MODE_RW, 4096, &region), 0);
	maps_perms(mmapd_region_data(region), perms);
	ck_assert_str_eq(perms, "rwxs");
	run_ret(mmapd_region_data(region));
	/* The default mode of an executable region gives owner and group the x bit. */
	ck_assert_int_eq(mmapd_stat(client, "code", &info), 0);
	ck_assert_uint_eq(info->perm, 0770);

	/* Read-only plus exec is r-x; without the flag a mapping is not executable. */
	ck_assert_int_eq(exec_open(client, "code", MMAPD_OPEN_EXEC, MMAPD_MODE_RO, 0, &ro), 0);
	maps_perms(mmapd_region_data(ro), perms);
	ck_assert_str_eq(perms, "r-xs");
	run_ret(mmapd_region_data(ro));
	mmapd_region_close(ro);
	ck_assert_int_eq(exec_open(client, "code", 0, MMAPD_MODE_COW, 0, &ro), 0);
	maps_perms(mmapd_region_data(ro), perms);
	ck_assert_str_eq(perms, "rw-p");
	mmapd_region_close(ro);
	ck_assert_int_eq(exec_open(client, "code", MMAPD_OPEN_EXEC, MMAPD_MODE_COW, 0, &ro), 0);
	maps_perms(mmapd_region_data(ro), perms);
	ck_assert_str_eq(perms, "rwxp");
	mmapd_region_close(ro);

	mmapd_region_close(region);
	mmapd_disconnect(client);
	test_daemon_stop(&d);
	mmapd_region_info_free(info);
}
END_TEST

START_TEST(test_exec_anonymous_region_created_without_exec_never_gets_it)
{
	struct test_daemon d;
	struct test_conn c;
	struct stat st;
	cJSON *reply;
	int fd;

	test_daemon_start(&d, CFG_EXEC);
	test_conn_open_hello(&c, &d);
	/* The x bits asked for are dropped: the region is not executable. */
	reply = test_conn_callf(&c, "{'op':'open','name':'a','mode':'rw','create':true,"
	                        "'size':4096,'anonymous':true,'perm':%d}", 0775);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	fd = test_conn_take_fd(&c);
	ck_assert_uint_eq(exec_perm(&d, "a"), 0664);
	/* Where the kernel has MFD_NOEXEC_SEAL (6.3+), the memfd has no x bits and is sealed so. */
	ck_assert_int_eq(fstat(fd, &st), 0);
	if (kernel_has_noexec_seal()) {
		ck_assert(fcntl(fd, F_GET_SEALS) & SEAL_EXEC);
		ck_assert_uint_eq(st.st_mode & 0111, 0);
	}
	close(fd);
	test_reply_error(test_conn_callf(&c, "{'op':'open','name':'a','exec':true}"), "EACCES",
	                 EACCES, "executable only when created with \"exec\"");
	test_reply_error(test_conn_callf(&c, "{'op':'chmod','name':'a','perm':%d}", 0770),
	                 "EPERM", EPERM, "cannot get execute bits");
	ck_assert_uint_eq(exec_perm(&d, "a"), 0664);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

/* Lets other uids reach the socket: the test directories are 0700. */
static void exec_dirs_open(const struct test_daemon *d)
{
	char parent[TEST_PATH_MAX];

	snprintf(parent, sizeof(parent), "%s", d->dir);
	ck_assert_int_eq(chmod(d->dir, 0711), 0);
	ck_assert_int_eq(chmod(dirname(parent), 0711), 0);
}

/*
 * In a child running as STRANGER (no groups): opens name through libmmapd read-only with
 * MMAPD_OPEN_EXEC and checks that the mapping is r-x. Returns the open's error (0 on
 * success), or 100+ when the child could not do its part.
 */
static int exec_open_as_stranger(const struct test_daemon *d, const char *name)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct mmapd_client *client;
		struct mmapd_region *region;
		char perms[5];
		int r;

		if (setgroups(0, NULL) < 0 || setresgid(STRANGER, STRANGER, STRANGER) < 0 ||
		    setresuid(STRANGER, STRANGER, STRANGER) < 0)
			_exit(100);
		if (mmapd_connect(d->sock, "stranger", &client) < 0)
			_exit(101);
		r = exec_open(client, name, MMAPD_OPEN_EXEC, MMAPD_MODE_RO, 0, &region);
		if (r == 0) {
			maps_perms(mmapd_region_data(region), perms);
			if (strcmp(perms, "r-xs") != 0)
				_exit(102);
			mmapd_region_close(region);
		}
		mmapd_disconnect(client);
		_exit(-r);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(test_exec_file_region_needs_the_x_bit_of_the_peers_class)
{
	struct test_daemon d;
	struct test_conn c;

	if (!test_is_root())
		return;
	test_daemon_init(&d, CFG_EXEC);
	exec_dirs_open(&d);
	test_daemon_launch(&d);
	test_conn_open_hello(&c, &d);
	test_reply_ok(test_conn_callf(&c, "{'op':'open','name':'f','mode':'rw','create':true,"
	                              "'size':4096,'perm':%d}", 0644));
	/* Root too needs some x bit, as execve does. */
	test_reply_error(test_conn_callf(&c, "{'op':'open','name':'f','exec':true}"), "EACCES",
	                 EACCES, "has no exec consent");
	ck_assert_int_eq(exec_open_as_stranger(&d, "f"), EACCES);

	/* The owner's and the group's x bits are not the others'. */
	test_reply_ok(test_conn_callf(&c, "{'op':'chmod','name':'f','perm':%d}", 0754));
	test_reply_ok(test_conn_callf(&c, "{'op':'open','name':'f','exec':true}"));
	ck_assert_int_eq(exec_open_as_stranger(&d, "f"), EACCES);

	test_reply_ok(test_conn_callf(&c, "{'op':'chmod','name':'f','perm':%d}", 0745));
	ck_assert_int_eq(exec_open_as_stranger(&d, "f"), 0);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_exec_file_x_bits_come_from_metadata_only_and_persist)
{
	struct test_daemon d;
	struct test_conn c;
	char path[TEST_PATH_MAX + 8], out[2048];
	int fd;

	test_daemon_start(&d, CFG_EXEC);
	/* A file made without mmapd: its own x bits are no consent. */
	snprintf(path, sizeof(path), "%s/plain", d.data);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0755);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 4096), 0);
	close(fd);
	ck_assert_int_eq(chmod(path, 0755), 0);
	ck_assert_uint_eq(exec_perm(&d, "plain"), 0644);
	test_conn_open_hello(&c, &d);
	test_reply_error(test_conn_callf(&c, "{'op':'open','name':'plain','exec':true}"),
	                 "EACCES", EACCES, "no exec consent");

	/* mmapctl chmod records the consent in the metadata, which a restart reads back. */
	test_conn_close(&c);
	ck_assert_int_eq(test_run_ctl(&d, out, sizeof(out), "chmod", "plain", "0750", (char *)NULL),
	                 0);
	test_daemon_kill(&d);
	test_daemon_restart(&d);
	ck_assert_uint_eq(exec_perm(&d, "plain"), 0750);
	test_conn_open_hello(&c, &d);
	test_reply_ok(test_conn_callf(&c, "{'op':'open','name':'plain','exec':true}"));
	test_conn_close(&c);

	/* mmapctl shows the x bits. */
	ck_assert_int_eq(test_run_ctl(&d, out, sizeof(out), "stat", "plain", (char *)NULL), 0);
	ck_assert_msg(strstr(out, "\nmode               0750\n") != NULL, "%s", out);
	ck_assert_int_eq(test_run_ctl(&d, out, sizeof(out), "regions", (char *)NULL), 0);
	ck_assert_msg(strstr(out, " 0750\n") != NULL, "%s", out);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_exec_creating_request_is_granted_exec_and_says_so)
{
	struct test_daemon d;
	struct test_conn c;
	cJSON *reply;

	test_daemon_start(&d, CFG_EXEC);
	test_conn_open_hello(&c, &d);
	reply = test_conn_callf(&c, "{'op':'open','name':'x','mode':'rw','create':true,"
	                        "'size':4096,'exec':true,'perm':%d}", 0600);
	test_assert_ok(reply);
	ck_assert(test_json_bool(reply, "exec"));
	cJSON_Delete(reply);
	reply = test_conn_callf(&c, "{'op':'open','name':'x'}");
	test_assert_ok(reply);
	ck_assert(!test_json_bool(reply, "exec"));
	cJSON_Delete(reply);
	/* Created with exec but mode 0600: the owner's class has no x bit now. */
	test_reply_error(test_conn_callf(&c, "{'op':'open','name':'x','exec':true}"), "EACCES",
	                 EACCES, "no exec consent");
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

struct seen {
	int reconnected;
	int deleted;
	int deleted_error;
};

static void exec_on_event(struct mmapd_client *client, const struct mmapd_event *ev, void *ud)
{
	struct seen *seen = ud;

	(void)client;
	if (ev->type == MMAPD_EVENT_RECONNECTED)
		seen->reconnected++;
	if (ev->type == MMAPD_EVENT_DELETED) {
		seen->deleted++;
		seen->deleted_error = ev->error;
	}
}

/* Restarts the daemon (SIGKILL) and dispatches until client has reconnected. */
static void exec_restart(struct test_daemon *d, struct mmapd_client *client,
                         const struct seen *seen)
{
	int before = seen->reconnected;

	test_daemon_kill(d);
	test_daemon_restart(d);
	for (int i = 0; i < 500 && seen->reconnected == before; i++)
		ck_assert_int_ge(mmapd_client_dispatch(client, 10), 0);
	ck_assert_int_eq(seen->reconnected, before + 1);
}

START_TEST(test_exec_grant_is_asked_again_after_a_reconnection)
{
	struct seen seen = { 0 };
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct test_daemon d;
	struct test_conn c;
	char perms[5];
	FILE *f;

	test_daemon_start(&d, CFG_EXEC);
	test_conn_open_hello(&c, &d);
	test_reply_ok(test_conn_callf(&c, "{'op':'open','name':'r','mode':'rw','create':true,"
	                              "'size':4096,'exec':true}"));
	test_conn_close(&c);
	client = test_client_connect(&d, "check_exec");
	mmapd_client_set_event_handler(client, exec_on_event, &seen);
	ck_assert_int_eq(exec_open(client, "r", MMAPD_OPEN_EXEC, MMAPD_MODE_RO, 0, &region), 0);

	exec_restart(&d, client, &seen);
	ck_assert_int_eq(seen.deleted, 0);
	maps_perms(mmapd_region_data(region), perms);
	ck_assert_str_eq(perms, "r-xs");
	ck_assert_uint_eq(test_daemon_status_u64(&d, "grants"), 1);

	/* A daemon that no longer allows exec does not re-grant: the region is given up. */
	f = fopen(d.config, "we");
	ck_assert_ptr_nonnull(f);
	fputs("{\"allow_exec\": false}\n", f);
	ck_assert_int_eq(fclose(f), 0);
	exec_restart(&d, client, &seen);
	ck_assert_int_eq(seen.deleted, 1);
	ck_assert_int_eq(seen.deleted_error, -EPERM);
	ck_assert_uint_eq(test_daemon_status_u64(&d, "grants"), 0);
	mmapd_region_close(region);
	mmapd_disconnect(client);
	test_daemon_stop(&d);
}
END_TEST

static Suite *exec_suite(void)
{
	Suite *s = suite_create("exec");
	TCase *tc = tcase_create("exec");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_exec_refused_while_allow_exec_is_false);
	tcase_add_test(tc, test_exec_anonymous_region_created_executable_runs_code);
	tcase_add_test(tc, test_exec_anonymous_region_created_without_exec_never_gets_it);
	tcase_add_test(tc, test_exec_file_region_needs_the_x_bit_of_the_peers_class);
	tcase_add_test(tc, test_exec_file_x_bits_come_from_metadata_only_and_persist);
	tcase_add_test(tc, test_exec_creating_request_is_granted_exec_and_says_so);
	tcase_add_test(tc, test_exec_grant_is_asked_again_after_a_reconnection);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(exec_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
