/* SPDX-License-Identifier: MIT */
/*
 * The regions the cases measure on: opened (usually created) through mmapd like any client
 * would, with what failed said on stderr.
 */
#ifndef MMAPD_BENCH_REGION_H
#define MMAPD_BENCH_REGION_H

#include "mmapd.h"

/*
 * mmapd_region_open(client, name, opts, ret_region); on failure says so on stderr
 * ("mmapd-bench: creating region <name>: <libmmapd's message>"). Returns its result.
 */
int bench_region_open(struct mmapd_client *client, const char *name,
                      const struct mmapd_open_opts *opts, struct mmapd_region **ret_region);

#endif
