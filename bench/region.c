/* SPDX-License-Identifier: MIT */
/*
 * Opening the cases' regions (see region.h).
 */
#include "region.h"

#include <stdio.h>

int bench_region_open(struct mmapd_client *client, const char *name,
                      const struct mmapd_open_opts *opts, struct mmapd_region **ret_region)
{
	int r = mmapd_region_open(client, name, opts, ret_region);

	if (r < 0)
		fprintf(stderr, "mmapd-bench: creating region %s: %s\n", name, mmapd_last_message());
	return r;
}
