/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of the per-user budgets and the reserve (docs/protocol.md, "Per-user
 * budgets"): each test is an attack a hostile local user made on a real daemon (the user is
 * uid 65534, nobody, reaching the daemon through sockets connected as that uid; see
 * harness_uid.c) while root keeps working beside it. Every limit used to be per connection
 * and reset on reconnect; these tests reconnect on purpose.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ctlpage.h"
#include "harness.h"

#define CFG_OPEN "\"socket_mode\": \"0666\""
#define OTHER_UID(n) (TEST_NOBODY - (n))   /* nobody, then uids in no group of interest */

/* What uid uses of a budget, from root's stats reply (0 when the uid has no entry). */
static uint64_t budget_used(const struct test_daemon *d, uid_t uid, const char *item)
{
	struct test_conn root;
	const cJSON *users, *u;
	char key[16];
	uint64_t v = 0;
	cJSON *reply;

	test_conn_open_hello(&root, d);
	reply = test_conn_callf(&root, "{'op':'stats'}");
	test_assert_ok(reply);
	users = cJSON_GetObjectItemCaseSensitive(reply, "users");
	ck_assert_msg(cJSON_IsObject(users), "stats has no users object: %s", test_describe(reply));
	snprintf(key, sizeof(key), "%lu", (unsigned long)uid);
	u = cJSON_GetObjectItemCaseSensitive(users, key);
	if (u)
		v = test_json_u64(u, item);
	cJSON_Delete(reply);
	test_conn_close(&root);
	return v;
}

/* Asserts that the message of error event ev names text. */
static void budget_assert_message(const cJSON *ev, const char *text)
{
	const char *message = test_json_str(cJSON_GetObjectItemCaseSensitive(ev, "error"), "message");

	ck_assert_msg(strstr(message, text) != NULL, "'%s' does not name %s", message, text);
}

/* Creates anonymous region name of size bytes (sparse) over c; returns the reply. */
static cJSON *budget_create_anon(struct test_conn *c, const char *name, uint64_t size)
{
	cJSON *reply = test_conn_callf(c, "{'op':'open','name':'%s','mode':'rw','create':true,"
	                               "'anonymous':true,'sparse':true,'size':%llu}", name,
	                               (unsigned long long)size);

	/* The grant's descriptor is not wanted here. */
	if (test_json_bool(reply, "ok"))
		close(test_conn_take_fd(c));
	return reply;
}

/*
 * The attack: one uid pinned 1.5 GiB of anonymous regions under a per-connection limit of 2
 * creations by reconnecting. Now its regions' bytes are counted per uid, whatever the
 * connection, until they are deleted; root is not bound; stats and mmapctl show the use.
 */
START_TEST(test_budget_anonymous_bytes_bound_a_user_not_a_connection)
{
	struct test_daemon d;
	struct test_conn c, root;
	char name[32], out[8192];
	int i, made = 0;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{" CFG_OPEN ", \"max_regions_created_per_client\": 2, "
	                         "\"max_anonymous_bytes_per_uid\": 1048576}");
	for (i = 0; i < 4; i++) {
		test_conn_open_hello_as(&c, &d, TEST_NOBODY, TEST_NOBODY);
		for (int k = 0; k < 2 && made < 5; k++) {
			cJSON *reply;

			snprintf(name, sizeof(name), "pin%d", made);
			reply = budget_create_anon(&c, name, 262144);
			if (made < 4) {
				test_reply_ok(reply);
			} else {
				test_reply_error(reply, "EAGAIN", EAGAIN, "max_anonymous_bytes_per_uid");
			}
			made++;
		}
		test_conn_close(&c);
	}
	ck_assert_int_eq(made, 5);
	ck_assert_uint_eq(budget_used(&d, TEST_NOBODY, "anonymous_bytes"), 1048576);
	ck_assert_uint_eq(budget_used(&d, TEST_NOBODY, "anonymous_regions"), 4);

	/* Root is exempt, and a resize of nobody's region past its budget is refused. */
	test_conn_open_hello(&root, &d);
	test_reply_ok(budget_create_anon(&root, "rootbig", 4u << 20));
	test_reply_error(test_conn_callf(&root, "{'op':'resize','name':'pin0','size':524288}"),
	                 "EAGAIN", EAGAIN, "max_anonymous_bytes_per_uid");
	test_conn_close(&root);

	ck_assert_int_eq(test_run_ctl(&d, out, sizeof(out), "stats", (char *)NULL), 0);
	ck_assert_msg(strstr(out, "users:") && strstr(out, "65534"), "mmapctl stats: %s", out);

	/* Deleting one gives its bytes back: the user may create again. */
	test_conn_open_hello_as(&c, &d, TEST_NOBODY, TEST_NOBODY);
	test_reply_ok(test_conn_callf(&c, "{'op':'delete','name':'pin0'}"));
	test_reply_ok(budget_create_anon(&c, "again", 262144));
	test_conn_close(&c);
	ck_assert_uint_eq(budget_used(&d, TEST_NOBODY, "anonymous_bytes"), 1048576);
	test_daemon_stop(&d);
}
END_TEST

/*
 * A user another one let write its anonymous region grows it behind the daemon's back
 * (ftruncate on the rw grant): the growth would spend the owner's budget, so it is never
 * adopted, and the owner can still create what its budget allows.
 */
START_TEST(test_budget_writer_cannot_spend_the_owners_budget)
{
	struct test_daemon d;
	struct test_conn owner, writer;
	cJSON *reply;
	int fd;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{" CFG_OPEN ", \"max_anonymous_bytes_per_uid\": 1048576, "
	                         "\"size_check_ms\": 20}");
	test_conn_open_hello_as(&owner, &d, TEST_NOBODY, TEST_NOBODY);
	test_reply_ok(test_conn_callf(&owner, "{'op':'open','name':'shared','mode':'rw',"
	                              "'create':true,'anonymous':true,'size':524288,'perm':%d}", 0666));
	close(test_conn_take_fd(&owner));

	test_conn_open_hello_as(&writer, &d, OTHER_UID(1), OTHER_UID(1));
	test_reply_ok(test_conn_callf(&writer, "{'op':'open','name':'shared','mode':'rw'}"));
	fd = test_conn_take_fd(&writer);
	ck_assert_int_eq(ftruncate(fd, 4 << 20), 0);
	/* Past a few size checks, the region is still the size the daemon made. */
	usleep(200 * 1000);
	reply = test_conn_callf(&owner, "{'op':'stat','name':'shared'}");
	test_assert_ok(reply);
	ck_assert_uint_eq(test_json_u64(cJSON_GetObjectItemCaseSensitive(reply, "region"), "size"),
	                  524288);
	cJSON_Delete(reply);
	ck_assert_uint_eq(budget_used(&d, TEST_NOBODY, "anonymous_bytes"), 524288);
	test_reply_ok(budget_create_anon(&owner, "second", 524288));

	close(fd);
	test_conn_close(&writer);
	test_conn_close(&owner);
	test_daemon_stop(&d);
}
END_TEST

/*
 * The memory reserve: what all users that are not exempt own together is bounded too
 * (max_anonymous_bytes_all_users), so many uids cannot pin what root needs.
 */
START_TEST(test_budget_all_users_leave_memory_for_root)
{
	struct test_daemon d;
	struct test_conn a, b, root;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{" CFG_OPEN ", \"max_anonymous_bytes_per_uid\": 1048576, "
	                         "\"max_anonymous_bytes_all_users\": 1048576}");
	test_conn_open_hello_as(&a, &d, TEST_NOBODY, TEST_NOBODY);
	test_conn_open_hello_as(&b, &d, OTHER_UID(1), OTHER_UID(1));
	test_reply_ok(budget_create_anon(&a, "a", 786432));
	test_reply_error(budget_create_anon(&b, "b", 524288), "EAGAIN", EAGAIN,
	                 "max_anonymous_bytes_all_users");
	test_reply_ok(budget_create_anon(&b, "b", 262144));
	test_conn_open_hello(&root, &d);
	test_reply_ok(budget_create_anon(&root, "r", 4u << 20));
	test_reply_ok(test_conn_callf(&a, "{'op':'delete','name':'a'}"));
	test_conn_close(&a);
	test_reply_ok(budget_create_anon(&b, "b2", 524288));
	test_conn_close(&b);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

/* Anonymous regions are counted per uid too, over reconnections. */
START_TEST(test_budget_anonymous_regions_bound_a_user)
{
	struct test_daemon d;
	struct test_conn c;
	char name[32];
	int i;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{" CFG_OPEN ", \"max_anonymous_regions_per_uid\": 3}");
	for (i = 0; i < 4; i++) {
		test_conn_open_hello_as(&c, &d, TEST_NOBODY, TEST_NOBODY);
		snprintf(name, sizeof(name), "r%d", i);
		if (i < 3)
			test_reply_ok(budget_create_anon(&c, name, 4096));
		else
			test_reply_error(budget_create_anon(&c, name, 4096), "EAGAIN", EAGAIN,
			                 "max_anonymous_regions_per_uid");
		test_conn_close(&c);
	}
	ck_assert_uint_eq(budget_used(&d, TEST_NOBODY, "anonymous_regions"), 3);
	test_daemon_stop(&d);
}
END_TEST

/*
 * The attack: one uid created 2,031 sparse anonymous regions and exhausted the daemon's
 * descriptors, so root's create failed with EMFILE. Now the last reserved_fds descriptors
 * are root's: the user gets EMFILE (naming the reserve), root still creates and connects,
 * and a new connection of the user is refused with an EMFILE event.
 */
START_TEST(test_budget_descriptor_reserve_keeps_root_working)
{
	struct rlimit small = { .rlim_cur = 160, .rlim_max = 160 };
	struct test_daemon d;
	struct test_conn c, root, late;
	char name[32];
	cJSON *reply = NULL, *event;
	int i;

	const char *fork_env = getenv("CK_FORK");

	/* Needs root, and a process of its own to lower the limit in (see below). */
	if (!test_is_root() || (fork_env && strcmp(fork_env, "no") == 0))
		return;
	/* The daemon inherits a small descriptor limit (hard, since it raises its soft limit to
	 * the hard one), so the attack is quick. Check runs each test in a process of its own
	 * (test_run_suite), and this one keeps the small limit to its end. */
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &small), 0);
	test_daemon_start_shared(&d, "{" CFG_OPEN ", \"reserved_fds\": 32, "
	                         "\"max_anonymous_regions_per_uid\": 100000, "
	                         "\"max_fds_per_uid\": 100000}");

	test_conn_open_hello_as(&c, &d, TEST_NOBODY, TEST_NOBODY);
	for (i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "fd%d", i);
		reply = budget_create_anon(&c, name, 4096);
		if (!test_json_bool(reply, "ok"))
			break;
		cJSON_Delete(reply);
	}
	ck_assert_msg(i < 200, "200 anonymous regions and no refusal");
	test_reply_error(reply, "EMFILE", EMFILE, "reserved_fds");

	test_conn_open_hello(&root, &d);
	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "root%d", i);
		test_reply_ok(budget_create_anon(&root, name, 4096));
	}
	test_conn_open_as(&late, &d, TEST_NOBODY, TEST_NOBODY);
	event = test_conn_expect_event(&late, "error", TEST_WAIT_MS);
	test_assert_error_event(event, "EMFILE", EMFILE);
	cJSON_Delete(event);
	test_conn_close(&late);
	test_conn_close(&root);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

/*
 * max_fds_per_uid counts connections and anonymous regions together: with 3 connections,
 * the fifth region makes 8 and the sixth is refused; so is a fourth connection, until a
 * region is deleted and its grants closed.
 */
START_TEST(test_budget_fds_per_uid_counts_connections_and_regions)
{
	struct test_daemon d;
	struct test_conn c[3], late;
	char name[32];
	cJSON *event;
	int i;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{" CFG_OPEN ", \"max_fds_per_uid\": 8}");
	for (i = 0; i < 3; i++)
		test_conn_open_hello_as(&c[i], &d, TEST_NOBODY, TEST_NOBODY);
	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		test_reply_ok(budget_create_anon(&c[i % 3], name, 4096));
	}
	ck_assert_uint_eq(budget_used(&d, TEST_NOBODY, "descriptors"), 8);
	test_reply_error(budget_create_anon(&c[0], "f5", 4096), "EMFILE", EMFILE,
	                 "max_fds_per_uid");

	test_conn_open_as(&late, &d, TEST_NOBODY, TEST_NOBODY);
	event = test_conn_expect_event(&late, "error", TEST_WAIT_MS);
	test_assert_error_event(event, "EMFILE", EMFILE);
	budget_assert_message(event, "max_fds_per_uid");
	cJSON_Delete(event);
	test_conn_close(&late);

	/* A deleted region's descriptor is given back once no grant holds it any more. */
	test_reply_ok(test_conn_callf(&c[1], "{'op':'delete','name':'f0'}"));
	ck_assert_uint_eq(budget_used(&d, TEST_NOBODY, "descriptors"), 8);
	test_conn_close(&c[0]);
	ck_assert_uint_eq(budget_used(&d, TEST_NOBODY, "descriptors"), 6);
	test_conn_open_hello_as(&late, &d, TEST_NOBODY, TEST_NOBODY);
	test_conn_close(&late);
	for (i = 1; i < 3; i++)
		test_conn_close(&c[i]);
	test_daemon_stop(&d);
}
END_TEST

#define LIST_REQ "{\"id\":7,\"op\":\"list\"}"

/* Reads frames until the end of the stream; true if it came within timeout_ms. */
static bool budget_reaches_end(struct test_conn *c, int timeout_ms)
{
	int64_t deadline = test_now_ms() + timeout_ms;

	while (test_now_ms() < deadline) {
		cJSON *obj = NULL;
		int r = test_conn_recv(c, 200, &obj);

		cJSON_Delete(obj);
		if (r == 0 || r == -ECONNRESET)
			return true;
		if (r < 0 && r != -ETIMEDOUT)
			return false;
	}
	return false;
}

/*
 * The attack: 255 connections sending `list` and never reading grew the daemon to 379 MiB
 * and stalled root. Now what waits unread for one uid is bounded over all its connections:
 * past max_queue_bytes_per_uid the connection that passed it is cut off, and root's pings
 * keep being answered.
 */
START_TEST(test_budget_queue_bytes_bound_a_user)
{
	enum { CONNS = 6, LISTS = 120 };
	struct test_daemon d;
	struct test_conn c[CONNS], root;
	char name[64];
	int i, k, ended = 0;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{" CFG_OPEN ", \"max_queue_bytes_per_uid\": 262144}");
	/* Enough regions for a list reply of several KiB. */
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "a-region-with-a-rather-long-name-%02d", i);
		test_daemon_create(&d, name, 4096, false);
	}
	for (i = 0; i < CONNS; i++)
		test_conn_open_hello_as(&c[i], &d, TEST_NOBODY, TEST_NOBODY);
	test_conn_open_hello(&root, &d);
	for (k = 0; k < LISTS; k++) {
		/* Sends fail once the daemon cut the connection off: that is the point. */
		for (i = 0; i < CONNS; i++)
			(void)test_conn_send_frame(&c[i], LIST_REQ, sizeof(LIST_REQ) - 1);
		if (k % 20 == 0)
			test_reply_ok(test_conn_callf(&root, "{'op':'ping'}"));
	}
	test_reply_ok(test_conn_callf(&root, "{'op':'ping'}"));
	ck_assert_uint_le(budget_used(&d, TEST_NOBODY, "queue_bytes"), 262144 + 65536);
	for (i = 0; i < CONNS; i++)
		if (budget_reaches_end(&c[i], 3000))
			ended++;
	ck_assert_msg(ended > 0, "no connection of the flooding uid was cut off");
	for (i = 0; i < CONNS; i++)
		test_conn_close(&c[i]);
	test_conn_close(&root);
	ck_assert_uint_eq(budget_used(&d, TEST_NOBODY, "queue_bytes"), 0);
	test_daemon_stop(&d);
}
END_TEST

/* Lock waiters are counted per uid over its connections; root's are not. */
START_TEST(test_budget_lock_waiters_bound_a_user)
{
	struct test_daemon d;
	struct test_conn c[3], root;
	int i, k;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{" CFG_OPEN ", \"max_lock_waiters_per_uid\": 8}");
	test_conn_open_hello(&root, &d);
	test_reply_ok(test_conn_callf(&root, "{'op':'open','name':'l','mode':'rw','create':true,"
	                              "'size':4096,'perm':%d}", 0666));
	close(test_conn_take_fd(&root));
	test_reply_ok(test_conn_callf(&root, "{'op':'lock','name':'l','offset':0,'length':4096,"
	                              "'mode':'exclusive'}"));
	for (i = 0; i < 3; i++)
		test_conn_open_hello_as(&c[i], &d, TEST_NOBODY, TEST_NOBODY);
	for (k = 0; k < 8; k++)
		test_conn_sendf(&c[k % 3], "{'op':'lock','name':'l','offset':0,'length':4096,"
		                "'mode':'shared','wait':true}");
	test_daemon_wait_status(&d, "lock_waiters", 8);
	test_reply_error(test_conn_callf(&c[2], "{'op':'lock','name':'l','offset':0,"
	                                 "'length':4096,'mode':'shared','wait':true}"),
	                 "EAGAIN", EAGAIN, "max_lock_waiters_per_uid");
	ck_assert_uint_eq(budget_used(&d, TEST_NOBODY, "lock_waiters"), 8);
	for (i = 0; i < 3; i++)
		test_conn_close(&c[i]);
	test_daemon_wait_status(&d, "lock_waiters", 0);
	ck_assert_uint_eq(budget_used(&d, TEST_NOBODY, "lock_waiters"), 0);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

/*
 * The attack: four uids took every max_clients slot and root could not connect. Now
 * reserved_clients slots are root's: a fifth uid gets an EUSERS event naming the reserve,
 * root connects, and past max_clients root is refused the same documented way.
 */
START_TEST(test_budget_reserved_clients_keep_root_connected)
{
	struct test_daemon d;
	struct test_conn users[6], more, root[2];
	cJSON *event;
	int i;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{" CFG_OPEN ", \"max_clients\": 8, \"reserved_clients\": 2, "
	                         "\"max_clients_per_uid\": 2}");
	for (i = 0; i < 6; i++)
		test_conn_open_hello_as(&users[i], &d, OTHER_UID(i / 2), OTHER_UID(i / 2));
	test_conn_open_as(&more, &d, OTHER_UID(3), OTHER_UID(3));
	event = test_conn_expect_event(&more, "error", TEST_WAIT_MS);
	test_assert_error_event(event, "EUSERS", EUSERS);
	budget_assert_message(event, "reserved_clients");
	cJSON_Delete(event);
	test_conn_close(&more);

	for (i = 0; i < 2; i++)
		test_conn_open_hello(&root[i], &d);
	test_conn_open(&more, &d);
	event = test_conn_expect_event(&more, "error", TEST_WAIT_MS);
	test_assert_error_event(event, "EUSERS", EUSERS);
	cJSON_Delete(event);
	test_conn_close(&more);

	for (i = 0; i < 2; i++)
		test_conn_close(&root[i]);
	for (i = 0; i < 6; i++)
		test_conn_close(&users[i]);
	test_daemon_stop(&d);
}
END_TEST

/*
 * Descriptors the daemon makes for a client (a control page, the doorbell of its change log,
 * the two of a page subscription) count against max_fds_per_uid for as long as the
 * connection lives: a uid asking for doorbells again and again is refused with a message
 * naming the budget, and gets them again once its connection is gone.
 */
START_TEST(test_budget_doorbells_count_as_descriptors)
{
	struct test_daemon d;
	struct test_conn c, root;
	struct ctlpage *page;
	cJSON *reply;
	int fd, i, granted = 0;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{" CFG_OPEN ", \"max_fds_per_uid\": 16}");
	test_daemon_create_perm(&d, "db", 4096, 0666);
	test_conn_open_hello_as(&c, &d, TEST_NOBODY, TEST_NOBODY);
	page = test_conn_control(&c, test_conn_grant(&c, "db", "rw"), &fd);
	for (i = 0; i < 64; i++) {
		reply = test_conn_callf(&c, "{'op':'changed','name':'db','doorbell':true}");
		if (!test_json_bool(reply, "ok"))
			break;
		close(test_conn_take_fd(&c));
		cJSON_Delete(reply);
		granted++;
	}
	ck_assert_msg(i < 64, "64 doorbells and no refusal");
	/* The connection and the control page are two of the 16. */
	ck_assert_int_eq(granted, 14);
	test_reply_error(reply, "EMFILE", EMFILE, "max_fds_per_uid");
	ck_assert_uint_eq(budget_used(&d, TEST_NOBODY, "descriptors"), 16);
	test_reply_error(test_conn_callf(&c, "{'op':'subscribe','name':'db','page':true}"),
	                 "EMFILE", EMFILE, "max_fds_per_uid");
	/* Root is not held to it. */
	test_conn_open_hello(&root, &d);
	reply = test_conn_callf(&root, "{'op':'subscribe','name':'db','page':true}");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	close(test_conn_take_fd(&root));
	close(test_conn_take_fd(&root));
	test_conn_close(&root);
	munmap(page, CTLPAGE_SIZE);
	close(fd);
	test_conn_close(&c);
	ck_assert_uint_eq(budget_used(&d, TEST_NOBODY, "descriptors"), 0);
	test_conn_open_hello_as(&c, &d, TEST_NOBODY, TEST_NOBODY);
	reply = test_conn_callf(&c, "{'op':'subscribe','name':'db','page':true}");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	close(test_conn_take_fd(&c));
	close(test_conn_take_fd(&c));
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

static Suite *budgets_suite(void)
{
	Suite *s = suite_create("budgets");
	TCase *tc = tcase_create("budgets");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_budget_anonymous_bytes_bound_a_user_not_a_connection);
	tcase_add_test(tc, test_budget_writer_cannot_spend_the_owners_budget);
	tcase_add_test(tc, test_budget_all_users_leave_memory_for_root);
	tcase_add_test(tc, test_budget_anonymous_regions_bound_a_user);
	tcase_add_test(tc, test_budget_descriptor_reserve_keeps_root_working);
	tcase_add_test(tc, test_budget_fds_per_uid_counts_connections_and_regions);
	tcase_add_test(tc, test_budget_queue_bytes_bound_a_user);
	tcase_add_test(tc, test_budget_lock_waiters_bound_a_user);
	tcase_add_test(tc, test_budget_reserved_clients_keep_root_connected);
	tcase_add_test(tc, test_budget_doorbells_count_as_descriptors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(budgets_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
