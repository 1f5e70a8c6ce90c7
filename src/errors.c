/*
 * errors.c: pf_strerror and pf_status_name, generated from errors.h's tables.
 */
#include "config.h"

#include "errors.h"

/* Every code is negative and above PF_EUSER, so a code of a flow's own
 * never reads as one of the library's. */
#define CHECK_CODE(code, text)                                              \
	_Static_assert((code) < 0 && (code) > PF_EUSER, #code " out of range");
PF__ERRORS(CHECK_CODE)
#undef CHECK_CODE

const char *
pf_strerror(int code)
{
	switch (code) {
	case 0:
		return "success";
#define CASE(code, text) \
	case code:       \
		return text;
		PF__ERRORS(CASE)
#undef CASE
	}
	/* PF_EAGAIN's text also covers a wait or step with no thread or
	 * stack left to run the work, and a thread that could not be made. */
	return code <= PF_EUSER ? "user error" : "unknown error";
}

const char *
pf_status_name(pf_status s)
{
	switch (s) {
#define CASE(status, text) \
	case status:       \
		return text;
		PF__STATUSES(CASE)
#undef CASE
	}
	return "unknown";
}
