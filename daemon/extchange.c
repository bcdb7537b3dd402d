/* SPDX-License-Identifier: MIT */
/*
 * Announcing a change made outside mmapd (see extchange.h). It sits with the relay, above the
 * modules it joins: the resize coordinator, the change log and the notifier.
 */
#include "extchange.h"

#include "notify.h"
#include "region.h"
#include "relay.h"
#include "resize.h"

void extchange_announce(struct region *r)
{
	uint64_t size = resize_notice(r);

	if (size > 0)
		notify_changed_external(r, relay_publish_external(r, size), size);
}
