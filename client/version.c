/* SPDX-License-Identifier: MIT */
/*
 * The library's own version, for a program that wants to know which libmmapd it runs against
 * (the MMAPD_VERSION_* macros of mmapd.h only say which header it was compiled with). The
 * string comes from the Makefile's VERSION, the one that also names libmmapd.so.VERSION and
 * fills mmapd.pc; mk/installcheck.sh checks that it agrees with the header's macros.
 */
#include "mmapd.h"

#ifndef MMAPD_VERSION_STRING
#error "MMAPD_VERSION_STRING is defined by the Makefile"
#endif

MMAPD_EXPORT const char *mmapd_version(void)
{
	return MMAPD_VERSION_STRING;
}
