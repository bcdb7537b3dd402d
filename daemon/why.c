/* SPDX-License-Identifier: MIT */
/*
 * Human reasons for failures (see why.h).
 */
#include "why.h"

#include <stdarg.h>
#include <stdio.h>

void why_set(struct why *w, const char *fmt, ...)
{
	va_list ap;

	if (!w)
		return;
	va_start(ap, fmt);
	vsnprintf(w->text, sizeof(w->text), fmt, ap);
	va_end(ap);
}
