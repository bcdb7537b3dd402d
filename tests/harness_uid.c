/*
 * Harness helpers for tests that speak as another user (see harness.h, "other users"). The
 * suite runs as root; a forked child drops to the wanted uid and gid (setgroups, setgid,
 * setuid) only to connect() a socket the test made, and exits. The kernel records the
 * credentials of the process that connected (SO_PEERCRED), so the daemon treats everything
 * the test then sends over that socket as coming from that user.
 */
#include <grp.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

void test_daemon_start_shared(struct test_daemon *d, const char *config_json)
{
	char parent[TEST_PATH_MAX];

	test_daemon_init(d, config_json);
	snprintf(parent, sizeof(parent), "%s", d->dir);
	ck_assert_int_eq(chmod(d->dir, 0711), 0);
	ck_assert_int_eq(chmod(dirname(parent), 0711), 0);
	test_daemon_launch(d);
}

int test_connect_as(const struct test_daemon *d, uid_t uid, gid_t gid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, status;
	pid_t pid;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_uint_lt(strlen(d->sock), sizeof(sa.sun_path));
	memcpy(sa.sun_path, d->sock, strlen(d->sock) + 1);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(100);
		_exit(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : 101);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	              "the child could not connect as %lu:%lu (status %d)", (unsigned long)uid,
	              (unsigned long)gid, status);
	return fd;
}

void test_conn_open_as(struct test_conn *c, const struct test_daemon *d, uid_t uid, gid_t gid)
{
	memset(c, 0, sizeof(*c));
	c->fd = test_connect_as(d, uid, gid);
	frame_reader_init(&c->reader, FRAME_MAX_LIMIT);
	fd_queue_init(&c->queue);
	c->next_id = 1;
}

void test_conn_open_hello_as(struct test_conn *c, const struct test_daemon *d, uid_t uid,
                             gid_t gid)
{
	cJSON *reply;

	test_conn_open_as(c, d, uid, gid);
	reply = test_conn_hello_version(c, 1);
	test_assert_ok(reply);
	cJSON_Delete(reply);
}
