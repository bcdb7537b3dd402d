/* SPDX-License-Identifier: MIT */
/*
 * Replays inputs through a fuzz target (fuzz_proto.c, or fuzz_ops.c) without libFuzzer, so the
 * seed corpus and every crash-* reproducer in it run as a plain regression test under any C
 * compiler (`make fuzz-replay`). A target's LLVMFuzzerInitialize, if it has one, runs first.
 * Arguments are files, or directories whose regular files are replayed in name order.
 * Each input's path is printed before it runs: an input that breaks an
 * invariant stops the program in __builtin_trap(), and the last path printed is the culprit.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Reads the whole file and runs it. Returns 0, or -errno if the file cannot be read. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	size_t size = 0, cap = 0;
	int r = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (size == cap) {
			uint8_t *ndata;

			cap = cap ? cap * 2 : 4096;
			ndata = realloc(data, cap);
			if (!ndata) {
				r = -ENOMEM;
				goto out;
			}
			data = ndata;
		}
		size += fread(data + size, 1, cap - size, f);
		if (ferror(f)) {
			r = -EIO;
			goto out;
		}
		if (feof(f))
			break;
	}
	fprintf(stderr, "  replay  %s (%zu bytes)\n", path, size);
	LLVMFuzzerTestOneInput(data, size);
out:
	free(data);
	fclose(f);
	return r;
}

/* Replays path, or the regular files in it if it is a directory. Returns inputs run, or -errno. */
static int replay_path(const char *path)
{
	struct dirent **list;
	struct stat st;
	int n, i, count = 0, r = 0;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode)) {
		r = replay_file(path);
		return r < 0 ? r : 1;
	}
	n = scandir(path, &list, NULL, alphasort);
	if (n < 0)
		return -errno;
	for (i = 0; i < n; i++) {
		char *child = NULL;

		if (r == 0 && asprintf(&child, "%s/%s", path, list[i]->d_name) < 0)
			r = -ENOMEM;
		if (r == 0 && stat(child, &st) == 0 && S_ISREG(st.st_mode)) {
			r = replay_file(child);
			count++;
		}
		free(child);
		free(list[i]);
	}
	free(list);
	return r < 0 ? r : count;
}

int main(int argc, char **argv)
{
	int i, total = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		int n = replay_path(argv[i]);

		if (n < 0) {
			fprintf(stderr, "%s: %s: %s\n", argv[0], argv[i], strerror(-n));
			return 1;
		}
		total += n;
	}
	if (total == 0) {
		fprintf(stderr, "%s: no inputs to replay\n", argv[0]);
		return 1;
	}
	printf("fuzz-replay: %s: %d inputs replayed, no invariant broken\n", argv[0], total);
	return 0;
}
