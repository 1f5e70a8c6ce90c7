// cxx.cc: libpumped from C++17.  <pumped.h> is a C header with extern "C"
// guards; its typed macros (PF_FLOW, PF_FLOW_DECLARE / PF_FLOW_DEFINE,
// PF_TAG, PF_TAG_DECLARE / PF_TAG_DEFINE_DEFAULT) use templates and a
// static_cast under C++ where C uses _Generic, so a handler of the wrong
// type is a compile error in both languages.
//
// Build against an installed libpumped:
//   c++ -std=c++17 cxx.cc $(pkg-config --cflags --libs pumped)
#include <cstdio>
#include <cstring>
#include <vector>

#include <pumped.h>

namespace {

struct range {
	long lo, hi;
};

// A recursive flow: declared first, defined after its handler.
PF_FLOW_DECLARE(sum_flow, range, long)

// A tag with a default, inherited by every child.
PF_TAG_DECLARE(grain_tag, long)

int
sum(pf_ctx *c, const range *in, long *out)
{
	long grain = 0;
	if (grain_tag_get(c, &grain) != 0)
		return PF_EINVAL;
	if (in->hi - in->lo <= grain) {
		long s = 0;
		for (long i = in->lo; i < in->hi; i++)
			s += i;
		*out = s;
		return 0;
	}
	long mid = in->lo + (in->hi - in->lo) / 2;
	range left{ in->lo, mid }, right{ mid, in->hi };
	pf_exec *e = nullptr;
	int rc = sum_flow_exec(c, &left, nullptr, &e);
	if (rc != 0)
		return rc;
	long b = 0;
	int rc2 = sum_flow_run(c, &right, &b, nullptr);
	long a = 0;
	rc = pf_exec_wait(e, &a);
	pf_exec_release(e);
	if (rc != 0 || rc2 != 0)
		return rc != 0 ? rc : rc2;
	*out = a + b;
	return 0;
}

// No input, no output: void on either side.
int
ping(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)in, (void)out;
	return 0;
}

PF_FLOW(ping_flow, void, void, ping)

PF_FLOW_DEFINE(sum_flow, range, long, sum);
PF_TAG_DEFINE_DEFAULT(grain_tag, long, "grain", 1000);

} // namespace

int
main()
{
	pf_scope *s = nullptr;
	int rc = pf_scope_create(&s, nullptr);
	if (rc != 0) {
		std::fprintf(stderr, "pf_scope_create: %s\n", pf_strerror(rc));
		return 1;
	}
	range all{ 0, 1000000 };
	long total = 0;
	rc = sum_flow_scope_run(s, &all, &total, nullptr);
	const long want = 1000000L * 999999L / 2;
	std::printf("sum [0, 1000000) = %ld (%s)\n", total,
	    rc == 0 && total == want ? "right" : "WRONG");

	// Several handles at once.
	std::vector<pf_exec *> pings(8);
	for (auto &e : pings)
		if (pf_scope_exec(s, &ping_flow, nullptr, nullptr, &e) != 0)
			return 1;
	int rc_all = pf_exec_wait_all(pings.data(), pings.size(), PF_FOREVER);
	for (auto *e : pings)
		pf_exec_release(e);
	std::printf("8 pings: %s\n", pf_strerror(rc_all));
	pf_scope_dispose(s);
	return rc == 0 && total == want && rc_all == 0 ? 0 : 1;
}
