/* SPDX-License-Identifier: MIT */
/*
 * The README's tour, first half: creates region "hello" (or the one named on the command line)
 * of one page, writes a sentence into it through a shared mapping, and exits. Nothing but a
 * small JSON request and one descriptor crosses the socket; the bytes go straight into the
 * pages every client of the region maps. examples/reader.c prints them.
 *
 * Build against an installed libmmapd:
 *   cc -o writer writer.c $(pkg-config --cflags --libs mmapd)
 * Usage: writer [REGION]   (socket: $MMAPD_SOCKET, else /run/mmapd/mmapd.sock).
 * Exit status 0 once written, 1 on any failure (with libmmapd's reason on stderr).
 */
#include <stdio.h>
#include <string.h>
#include <mmapd.h>

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "hello";
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(.flags = MMAPD_OPEN_CREATE,
	                                              .mode = MMAPD_MODE_RW, .size = 4096);
	struct mmapd_client *client;
	struct mmapd_region *region;

	if (mmapd_connect(NULL, "writer", &client) < 0) {
		fprintf(stderr, "writer: connect: %s\n", mmapd_last_message());
		return 1;
	}
	if (mmapd_region_open(client, name, &opts, &region) < 0) {
		fprintf(stderr, "writer: open %s: %s\n", name, mmapd_last_message());
		mmapd_disconnect(client);
		return 1;
	}
	strcpy(mmapd_region_data(region), "written through a shared mapping");
	printf("wrote %zu bytes into region %s\n", strlen(mmapd_region_data(region)) + 1, name);
	mmapd_region_close(region);
	mmapd_disconnect(client);
	return 0;
}
