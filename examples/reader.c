/* SPDX-License-Identifier: MIT */
/*
 * The README's tour, second half: opens region "hello" (or the one named on the command line)
 * read-only, which the daemon grants as a real O_RDONLY descriptor, and prints the string
 * examples/writer.c left at its start, read straight from the shared pages.
 *
 * Build against an installed libmmapd:
 *   cc -o reader reader.c $(pkg-config --cflags --libs mmapd)
 * Usage: reader [REGION]   (socket: $MMAPD_SOCKET, else /run/mmapd/mmapd.sock).
 * Exit status 0 once printed, 1 on any failure (with libmmapd's reason on stderr).
 */
#include <stdio.h>
#include <string.h>
#include <mmapd.h>

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "hello";
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RO);
	struct mmapd_client *client;
	struct mmapd_region *region;
	const char *data;
	size_t len;

	if (mmapd_connect(NULL, "reader", &client) < 0) {
		fprintf(stderr, "reader: connect: %s\n", mmapd_last_message());
		return 1;
	}
	if (mmapd_region_open(client, name, &opts, &region) < 0) {
		fprintf(stderr, "reader: open %s: %s\n", name, mmapd_last_message());
		mmapd_disconnect(client);
		return 1;
	}
	/* The region is the writer's: print at most its length, terminated or not. */
	data = mmapd_region_data(region);
	len = strnlen(data, mmapd_region_length(region));
	printf("%.*s\n", (int)len, data);
	mmapd_region_close(region);
	mmapd_disconnect(client);
	return 0;
}
