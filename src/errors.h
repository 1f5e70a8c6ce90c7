/*
 * errors.h: the library's error codes and their texts, in one table.
 *
 * PF__ERRORS is the one list of every code pumped.h defines, with the
 * text pf_strerror gives for it.  pf_strerror is generated from it
 * (errors.c), errors.c asserts each entry's value at compile time, and
 * tests/check-source.sh fails when pumped.h defines a PF_E* code that the
 * table lacks, so the header, the table and the strings cannot disagree.
 */
#ifndef PF_ERRORS_H
#define PF_ERRORS_H

#include "pumped.h"

/* X(code, text): every code of pumped.h but PF_EUSER, which starts the
 * range of the flows' own codes ("user error"). */
#define PF__ERRORS(X)                                                       \
	X(PF_ENOENT, "tag not found")                                       \
	X(PF_EAGAIN, "not finished yet, or no thread available to run it")  \
	X(PF_ENOMEM, "out of memory")                                       \
	X(PF_EINVAL, "invalid argument")                                    \
	X(PF_ESHUTDOWN, "scope is disposed or disposing")                   \
	X(PF_ETIMEDOUT, "execution timed out")                              \
	X(PF_ECANCELED, "execution aborted")

/* X(status, text): every pf_status, as pf_status_name gives it. */
#define PF__STATUSES(X)                                                     \
	X(PF_PENDING, "pending")                                            \
	X(PF_RUNNING, "running")                                            \
	X(PF_COMPLETED, "completed")                                        \
	X(PF_FAILED, "failed")                                              \
	X(PF_CANCELLED, "cancelled")

#endif /* PF_ERRORS_H */
