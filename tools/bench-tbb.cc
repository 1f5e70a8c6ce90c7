/*
 * bench-tbb.cc: oneTBB baselines for tools/pumped-bench (untracked work).
 *
 * Fork-join uses task_group inside a task_arena whose caller takes one
 * slot (threads - 1 workers join it); outside submissions use
 * task_arena::enqueue into an arena with no slot reserved for the caller,
 * so `threads` workers serve it.  A global_control raises TBB's worker
 * limit (default: CPUs - 1) so that such an arena really gets `threads`
 * workers.  Built only when configure found TBB (HAVE_TBB).
 */
#include "config.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "bench-peers.h"

namespace {

std::unique_ptr<tbb::global_control> g_control;
size_t g_parallelism = 0;
std::map<std::pair<unsigned, unsigned>, std::unique_ptr<tbb::task_arena>>
    g_arenas;

tbb::task_arena &
arena(unsigned threads, unsigned reserved)
{
	size_t want = threads + 1;
	if (want > g_parallelism) {
		g_control.reset();
		g_control.reset(new tbb::global_control(
		    tbb::global_control::max_allowed_parallelism, want));
		g_parallelism = want;
	}
	auto &a = g_arenas[std::make_pair(threads, reserved)];
	if (!a) {
		a.reset(new tbb::task_arena((int)threads, reserved));
		a->initialize();
	}
	return *a;
}

int64_t
now_ns()
{
	return std::chrono::duration_cast<std::chrono::nanoseconds>(
	    std::chrono::steady_clock::now().time_since_epoch())
	    .count();
}

long
tfib(int n)
{
	if (n < 2)
		return n;
	long a, b;
	tbb::task_group g;
	g.run([&] { a = tfib(n - 1); });
	b = tfib(n - 2);
	g.wait();
	return a + b;
}

struct board {
	int n, row;
	uint32_t cols, d1, d2;
};

uint32_t
free_cols(const board &b)
{
	uint32_t all = (UINT32_C(1) << b.n) - 1;
	return all & ~(b.cols | b.d1 | b.d2);
}

board
place(const board &b, uint32_t bit)
{
	uint32_t all = (UINT32_C(1) << b.n) - 1;
	return board{ b.n, b.row + 1, b.cols | bit, ((b.d1 | bit) << 1) & all,
		(b.d2 | bit) >> 1 };
}

long
nq_serial(const board &b)
{
	if (b.row == b.n)
		return 1;
	long count = 0;
	for (uint32_t f = free_cols(b); f != 0; f &= f - 1)
		count += nq_serial(place(b, f & -f));
	return count;
}

long
tnq(const board &b)
{
	if (b.row >= b.n - 2)
		return nq_serial(b);
	board kids[32];
	long res[32];
	int k = 0;
	for (uint32_t f = free_cols(b); f != 0; f &= f - 1)
		kids[k++] = place(b, f & -f);
	if (k == 0)
		return 0;
	tbb::task_group g;
	for (int i = 0; i < k - 1; i++)
		g.run([&, i] { res[i] = tnq(kids[i]); });
	res[k - 1] = tnq(kids[k - 1]);
	g.wait();
	long total = 0;
	for (int i = 0; i < k; i++)
		total += res[i];
	return total;
}

struct countdown {
	std::mutex mu;
	std::condition_variable cv;
	std::atomic<long> left;
	bool done = false;
	explicit countdown(long n) : left(n) {}
	void tick()
	{
		if (left.fetch_sub(1, std::memory_order_acq_rel) == 1) {
			std::lock_guard<std::mutex> l(mu);
			done = true;
			cv.notify_one();
		}
	}
	void wait()
	{
		std::unique_lock<std::mutex> l(mu);
		cv.wait(l, [this] { return done; });
	}
};

} // namespace

extern "C" {

int
bench_tbb_available(void)
{
	return 1;
}

int64_t
bench_tbb_fib(unsigned threads, int n, long *result)
{
	tbb::task_arena &a = arena(threads, 1);
	long r = 0;
	int64_t t0 = now_ns();
	a.execute([&] { r = tfib(n); });
	int64_t t1 = now_ns();
	*result = r;
	return t1 - t0;
}

int64_t
bench_tbb_nqueens(unsigned threads, int n, long *result)
{
	tbb::task_arena &a = arena(threads, 1);
	long r = 0;
	int64_t t0 = now_ns();
	a.execute([&] { r = tnq(board{ n, 0, 0, 0, 0 }); });
	int64_t t1 = now_ns();
	*result = r;
	return t1 - t0;
}

int64_t
bench_tbb_wide(unsigned threads, long n)
{
	tbb::task_arena &a = arena(threads, 0);
	countdown c(n);
	int64_t t0 = now_ns();
	for (long i = 0; i < n; i++)
		a.enqueue([&c] { c.tick(); });
	c.wait();
	return now_ns() - t0;
}

int64_t
bench_tbb_rtt(unsigned threads, long rounds)
{
	tbb::task_arena &a = arena(threads, 0);
	int64_t t0 = now_ns();
	for (long i = 0; i < rounds; i++) {
		countdown c(1);
		a.enqueue([&c] { c.tick(); });
		c.wait();
	}
	return now_ns() - t0;
}

int64_t
bench_tbb_pfor(unsigned threads, long n, long grain, uint64_t *result)
{
	tbb::task_arena &a = arena(threads, 1);
	std::atomic<uint64_t> sum{ 0 };
	int64_t t0 = now_ns();
	a.execute([&] {
		tbb::parallel_for(tbb::blocked_range<long>(0, n, grain),
		    [&](const tbb::blocked_range<long> &r) {
			    uint64_t s = 0;
			    for (long i = r.begin(); i != r.end(); i++)
				    s += pfor_body((uint64_t)i);
			    sum.fetch_add(s, std::memory_order_relaxed);
		    },
		    tbb::simple_partitioner());
	});
	int64_t t1 = now_ns();
	*result = sum.load();
	return t1 - t0;
}

void
bench_tbb_shutdown(void)
{
	g_arenas.clear();
	g_control.reset();
	g_parallelism = 0;
}

} // extern "C"
