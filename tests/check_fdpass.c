/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for proto/fdpass.c (and shared/fdcount.c, which they lean on), run over a
 * socketpair: descriptors arrive as the same open files, close-on-exec, in FIFO order across
 * frames; whatever cannot be accounted for is closed and reported as -EPROTO. A checked
 * fixture counts /proc/self/fd around every test, so a leaked descriptor fails the test.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdcount.h"
#include "fdpass.h"
#include "frame.h"
#include "msg.h"

static int fds_at_start;

static void fd_leak_setup(void)
{
	fds_at_start = fd_count();
	ck_assert_int_ge(fds_at_start, 0);
}

static void fd_leak_teardown(void)
{
	ck_assert_int_eq(fd_count(), fds_at_start);
}

static void socketpair_open(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void socketpair_close(int sv[2])
{
	close(sv[0]);
	close(sv[1]);
}

static int memfd_open(void)
{
	int fd = memfd_create("check_fdpass", MFD_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	return fd;
}

static void assert_same_file(int a, int b)
{
	struct stat sa, sb;

	ck_assert_int_eq(fstat(a, &sa), 0);
	ck_assert_int_eq(fstat(b, &sb), 0);
	ck_assert_uint_eq(sa.st_dev, sb.st_dev);
	ck_assert_uint_eq(sa.st_ino, sb.st_ino);
}

static void assert_cloexec(int fd)
{
	int flags = fcntl(fd, F_GETFD);

	ck_assert_int_ge(flags, 0);
	ck_assert(flags & FD_CLOEXEC);
}

START_TEST(test_fdpass_passes_one_fd)
{
	struct fd_queue q;
	int sv[2], fd, got;
	char buf[8];

	socketpair_open(sv);
	fd_queue_init(&q);
	fd = memfd_open();
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, &fd, 1, 0), 1);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), &q, 0), 1);
	ck_assert_int_eq(buf[0], 'x');
	ck_assert_uint_eq(q.count, 1);
	ck_assert_int_eq(fd_queue_take(&q, 1, &got), 0);
	ck_assert_int_ne(got, fd);
	assert_same_file(got, fd);
	assert_cloexec(got);
	ck_assert_uint_eq(q.count, 0);
	close(got);
	close(fd);
	socketpair_close(sv);
}
END_TEST

START_TEST(test_fdpass_passes_three_fds_in_order)
{
	struct fd_queue q;
	int sv[2], fds[3], got[3], i;
	char buf[8];

	socketpair_open(sv);
	fd_queue_init(&q);
	for (i = 0; i < 3; i++)
		fds[i] = memfd_open();
	ck_assert_int_eq(fdpass_send(sv[0], "abc", 3, fds, 3, 0), 3);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), &q, 0), 3);
	ck_assert_uint_eq(q.count, 3);
	ck_assert_int_eq(fd_queue_take(&q, 3, got), 0);
	for (i = 0; i < 3; i++) {
		assert_same_file(got[i], fds[i]);
		assert_cloexec(got[i]);
		close(got[i]);
		close(fds[i]);
	}
	socketpair_close(sv);
}
END_TEST

START_TEST(test_fdpass_passes_253_fds)
{
	struct fd_queue q;
	int sv[2], fd, fds[FDPASS_MAX_FDS], got[FDPASS_MAX_FDS], i;
	char buf[8];

	socketpair_open(sv);
	fd_queue_init(&q);
	fd = memfd_open();
	for (i = 0; i < FDPASS_MAX_FDS; i++)
		fds[i] = fd;
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, fds, FDPASS_MAX_FDS, 0), 1);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), &q, 0), 1);
	ck_assert_uint_eq(q.count, FDPASS_MAX_FDS);
	ck_assert_int_eq(fd_queue_take(&q, FDPASS_MAX_FDS, got), 0);
	for (i = 0; i < FDPASS_MAX_FDS; i++) {
		assert_same_file(got[i], fd);
		close(got[i]);
	}
	close(fd);
	socketpair_close(sv);
}
END_TEST

/*
 * Two frames, {"fds":1} and {"fds":2}, sent back to back. However recvmsg splits the bytes,
 * the first frame must claim the first descriptor and the second frame the next two.
 */
START_TEST(test_fdpass_frames_claim_fds_in_fifo_order)
{
	static const char *const payloads[2] = { "{\"fds\":1}", "{\"fds\":2}" };
	struct frame_reader r;
	struct fd_queue q;
	int sv[2], fds[3], got[3], i, frames = 0, claimed = 0;

	socketpair_open(sv);
	fd_queue_init(&q);
	frame_reader_init(&r, FRAME_MAX_DEFAULT);
	for (i = 0; i < 3; i++)
		fds[i] = memfd_open();
	for (i = 0; i < 2; i++) {
		uint8_t *frame;
		size_t frame_len;

		ck_assert_int_eq(frame_encode(payloads[i], strlen(payloads[i]), &frame, &frame_len), 0);
		ck_assert_int_eq(fdpass_send(sv[0], frame, frame_len, fds + i, (size_t)i + 1, 0),
				 (ssize_t)frame_len);
		free(frame);
	}

	while (frames < 2) {
		const char *payload;
		size_t avail, len;
		uint8_t *dst;
		ssize_t n;
		int ret;

		ck_assert_int_eq(frame_reader_space(&r, &dst, &avail), 0);
		n = fdpass_recv(sv[1], dst, avail, &q, 0);
		ck_assert_int_gt(n, 0);
		frame_reader_commit(&r, (size_t)n);
		while ((ret = frame_reader_next(&r, &payload, &len)) == 1) {
			cJSON *obj;
			uint64_t nfds;

			ck_assert_int_eq(msg_parse(payload, len, &obj), 0);
			ck_assert_int_eq(msg_get_u64(obj, "fds", &nfds), 0);
			cJSON_Delete(obj);
			ck_assert_uint_eq(nfds, (uint64_t)frames + 1);
			ck_assert_int_eq(fd_queue_take(&q, nfds, got + claimed), 0);
			claimed += (int)nfds;
			frames++;
		}
		ck_assert_int_eq(ret, 0);
	}
	ck_assert_int_eq(claimed, 3);
	ck_assert_uint_eq(q.count, 0);
	for (i = 0; i < 3; i++) {
		assert_same_file(got[i], fds[i]);
		close(got[i]);
		close(fds[i]);
	}
	frame_reader_done(&r);
	socketpair_close(sv);
}
END_TEST

START_TEST(test_fd_queue_take_too_few_takes_nothing)
{
	struct fd_queue q;
	int sv[2], fds[2], got[3] = { -1, -1, -1 }, i;
	char buf[8];

	socketpair_open(sv);
	fd_queue_init(&q);
	fds[0] = memfd_open();
	fds[1] = memfd_open();
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, fds, 2, 0), 1);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), &q, 0), 1);

	ck_assert_int_eq(fd_queue_take(&q, 3, got), -EPROTO);
	ck_assert_uint_eq(q.count, 2);
	ck_assert_int_eq(got[0], -1);
	ck_assert_int_eq(fd_queue_take(&q, 2, got), 0);
	for (i = 0; i < 2; i++) {
		assert_same_file(got[i], fds[i]);
		close(got[i]);
		close(fds[i]);
	}
	ck_assert_int_eq(fd_queue_take(&q, 1, got), -EPROTO);
	ck_assert_int_eq(fd_queue_take(&q, 0, NULL), 0);
	socketpair_close(sv);
}
END_TEST

START_TEST(test_fd_queue_clear_closes_unclaimed_fds)
{
	struct fd_queue q;
	int sv[2], fd, fds[3], got, before;
	char buf[8];

	socketpair_open(sv);
	fd_queue_init(&q);
	fd = memfd_open();
	fds[0] = fds[1] = fds[2] = fd;
	before = fd_count();
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, fds, 3, 0), 1);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), &q, 0), 1);
	ck_assert_int_eq(fd_count(), before + 3);
	ck_assert_int_eq(fd_queue_take(&q, 1, &got), 0);
	fd_queue_clear(&q);
	ck_assert_uint_eq(q.count, 0);
	/* The claimed descriptor is the caller's and stays open; the other two are gone. */
	ck_assert_int_eq(fd_count(), before + 1);
	assert_same_file(got, fd);
	close(got);
	close(fd);
	socketpair_close(sv);
}
END_TEST

START_TEST(test_fdpass_recv_rejects_fds_beyond_queue_room)
{
	enum { FIRST = 250, SECOND = 10 };
	struct fd_queue q;
	int sv[2], fd, fds[FIRST], before, i;
	char buf[8];

	socketpair_open(sv);
	fd_queue_init(&q);
	fd = memfd_open();
	for (i = 0; i < FIRST; i++)
		fds[i] = fd;
	ck_assert_int_eq(fdpass_send(sv[0], "a", 1, fds, FIRST, 0), 1);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), &q, 0), 1);
	ck_assert_uint_eq(q.count, FIRST);

	/* Ten more do not fit the six free slots: all ten are closed, the queue is untouched. */
	before = fd_count();
	ck_assert_int_eq(fdpass_send(sv[0], "b", 1, fds, SECOND, 0), 1);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), &q, 0), -EPROTO);
	ck_assert_int_eq(fd_count(), before);
	ck_assert_uint_eq(q.count, FIRST);

	fd_queue_clear(&q);
	close(fd);
	socketpair_close(sv);
}
END_TEST

/*
 * With SO_PASSCRED on the receiver, credentials come first in the control data and take room
 * the 253 descriptors needed, so the kernel truncates them (MSG_CTRUNC). fdpass_recv must
 * close the ones that did arrive and report a protocol error.
 */
START_TEST(test_fdpass_recv_rejects_truncated_control_data)
{
	struct fd_queue q;
	int sv[2], fd, fds[FDPASS_MAX_FDS], on = 1, before, i;
	char buf[8];

	socketpair_open(sv);
	fd_queue_init(&q);
	ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)), 0);
	fd = memfd_open();
	for (i = 0; i < FDPASS_MAX_FDS; i++)
		fds[i] = fd;
	before = fd_count();
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, fds, FDPASS_MAX_FDS, 0), 1);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), &q, 0), -EPROTO);
	ck_assert_int_eq(fd_count(), before);
	ck_assert_uint_eq(q.count, 0);
	close(fd);
	socketpair_close(sv);
}
END_TEST

START_TEST(test_fdpass_send_rejects_more_than_253_fds)
{
	int sv[2], fd, fds[FDPASS_MAX_FDS + 1], i;
	struct fd_queue q;
	char buf[8];

	socketpair_open(sv);
	fd_queue_init(&q);
	fd = memfd_open();
	for (i = 0; i < FDPASS_MAX_FDS + 1; i++)
		fds[i] = fd;
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, fds, FDPASS_MAX_FDS + 1, 0), -EINVAL);
	/* Nothing was sent. */
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), &q, MSG_DONTWAIT), -EAGAIN);
	ck_assert_uint_eq(q.count, 0);
	close(fd);
	socketpair_close(sv);
}
END_TEST

START_TEST(test_fdpass_send_rejects_fds_without_bytes)
{
	int sv[2], fd;

	socketpair_open(sv);
	fd = memfd_open();
	ck_assert_int_eq(fdpass_send(sv[0], "", 0, &fd, 1, 0), -EINVAL);
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, NULL, 1, 0), -EINVAL);
	close(fd);
	socketpair_close(sv);
}
END_TEST

START_TEST(test_fdpass_sends_bytes_without_fds)
{
	struct fd_queue q;
	int sv[2];
	char buf[16];

	socketpair_open(sv);
	fd_queue_init(&q);
	ck_assert_int_eq(fdpass_send(sv[0], "hello", 5, NULL, 0, 0), 5);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), &q, 0), 5);
	ck_assert_mem_eq(buf, "hello", 5);
	ck_assert_uint_eq(q.count, 0);
	socketpair_close(sv);
}
END_TEST

START_TEST(test_fdpass_recv_reports_end_of_stream)
{
	struct fd_queue q;
	int sv[2];
	char buf[8];

	socketpair_open(sv);
	fd_queue_init(&q);
	close(sv[0]);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), &q, 0), 0);
	close(sv[1]);
}
END_TEST

START_TEST(test_fdpass_recv_would_block_with_dontwait)
{
	struct fd_queue q;
	int sv[2];
	char buf[8];

	socketpair_open(sv);
	fd_queue_init(&q);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), &q, MSG_DONTWAIT), -EAGAIN);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, 0, &q, MSG_DONTWAIT), -EINVAL);
	socketpair_close(sv);
}
END_TEST

/* A peer that went away is -EPIPE, never a SIGPIPE that would kill the test (or the daemon). */
START_TEST(test_fdpass_send_to_closed_peer_returns_epipe)
{
	int sv[2], fd;

	socketpair_open(sv);
	fd = memfd_open();
	close(sv[1]);
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, NULL, 0, 0), -EPIPE);
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, &fd, 1, 0), -EPIPE);
	close(fd);
	close(sv[0]);
}
END_TEST

START_TEST(test_fd_count_counts_open_descriptors)
{
	int before = fd_count(), fd;

	ck_assert_int_gt(before, 0);
	fd = memfd_open();
	ck_assert_int_eq(fd_count(), before + 1);
	close(fd);
	ck_assert_int_eq(fd_count(), before);
}
END_TEST

START_TEST(test_fd_count_matches_fcntl_probe)
{
	long max = sysconf(_SC_OPEN_MAX);
	int expected = 0, fd;

	ck_assert_int_gt(max, 0);
	/* Asking every possible descriptor number opens nothing, so the two counts must agree. */
	for (fd = 0; fd < max; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			expected++;
	ck_assert_int_eq(fd_count(), expected);
}
END_TEST

static Suite *fdpass_suite(void)
{
	Suite *s = suite_create("fdpass");
	TCase *tc = tcase_create("fdpass");

	tcase_add_checked_fixture(tc, fd_leak_setup, fd_leak_teardown);
	tcase_add_test(tc, test_fdpass_passes_one_fd);
	tcase_add_test(tc, test_fdpass_passes_three_fds_in_order);
	tcase_add_test(tc, test_fdpass_passes_253_fds);
	tcase_add_test(tc, test_fdpass_frames_claim_fds_in_fifo_order);
	tcase_add_test(tc, test_fd_queue_take_too_few_takes_nothing);
	tcase_add_test(tc, test_fd_queue_clear_closes_unclaimed_fds);
	tcase_add_test(tc, test_fdpass_recv_rejects_fds_beyond_queue_room);
	tcase_add_test(tc, test_fdpass_recv_rejects_truncated_control_data);
	tcase_add_test(tc, test_fdpass_send_rejects_more_than_253_fds);
	tcase_add_test(tc, test_fdpass_send_rejects_fds_without_bytes);
	tcase_add_test(tc, test_fdpass_sends_bytes_without_fds);
	tcase_add_test(tc, test_fdpass_recv_reports_end_of_stream);
	tcase_add_test(tc, test_fdpass_recv_would_block_with_dontwait);
	tcase_add_test(tc, test_fdpass_send_to_closed_peer_returns_epipe);
	suite_add_tcase(s, tc);
	return s;
}

static Suite *fdcount_suite(void)
{
	Suite *s = suite_create("fdcount");
	TCase *tc = tcase_create("fdcount");

	tcase_add_checked_fixture(tc, fd_leak_setup, fd_leak_teardown);
	tcase_add_test(tc, test_fd_count_counts_open_descriptors);
	tcase_add_test(tc, test_fd_count_matches_fcntl_probe);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fdpass_suite());
	int failed;

	srunner_add_suite(sr, fdcount_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
