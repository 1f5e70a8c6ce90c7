/*
 * bench-mpool.c: the simplest thread pool, a baseline for tools/pumped-bench.
 *
 * One FIFO queue under one mutex, one condition variable, N threads, no
 * stealing, one malloc'd node per task: what a program writes when it
 * needs "a pool" in fifty lines.  Waiting is on a condition variable too.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "bench-peers.h"

typedef struct mp_task {
	struct mp_task *next;
	void (*fn)(void *arg);
	void *arg;
} mp_task;

struct bench_mpool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	mp_task *head, *tail;
	bool stop;
	unsigned nthreads;
	pthread_t *th;
};

/* A one-shot completion: a counter, a mutex, a condvar. */
typedef struct mp_done {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_long left;
	bool done;
} mp_done;

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *
mp_worker(void *arg)
{
	bench_mpool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->head == NULL && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		mp_task *t = p->head;
		if (t == NULL) { /* stop, queue drained */
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		p->head = t->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		t->fn(t->arg);
		free(t);
	}
}

bench_mpool *
bench_mpool_create(unsigned threads)
{
	bench_mpool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->th = calloc(threads, sizeof(*p->th));
	if (p->th == NULL) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&p->th[i], NULL, mp_worker, p) != 0)
			break;
		p->nthreads++;
	}
	if (p->nthreads != threads) {
		bench_mpool_destroy(p);
		return NULL;
	}
	return p;
}

void
bench_mpool_destroy(bench_mpool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->th[i], NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->th);
	free(p);
}

static int
mp_submit(bench_mpool *p, void (*fn)(void *), void *arg)
{
	mp_task *t = malloc(sizeof(*t));
	if (t == NULL)
		return -1;
	t->next = NULL;
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_lock(&p->mu);
	if (p->tail != NULL)
		p->tail->next = t;
	else
		p->head = t;
	p->tail = t;
	pthread_mutex_unlock(&p->mu);
	pthread_cond_signal(&p->cv);
	return 0;
}

static void
done_init(mp_done *d, long n)
{
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	atomic_init(&d->left, n);
	d->done = false;
}

static void
done_destroy(mp_done *d)
{
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
}

static void
done_wait(mp_done *d)
{
	pthread_mutex_lock(&d->mu);
	while (!d->done)
		pthread_cond_wait(&d->cv, &d->mu);
	pthread_mutex_unlock(&d->mu);
}

/* The task body: count down; the last one wakes the waiter. */
static void
done_tick(void *arg)
{
	mp_done *d = arg;
	if (atomic_fetch_sub_explicit(&d->left, 1, memory_order_acq_rel) == 1) {
		pthread_mutex_lock(&d->mu);
		d->done = true;
		pthread_cond_signal(&d->cv);
		pthread_mutex_unlock(&d->mu);
	}
}

int64_t
bench_mpool_wide(bench_mpool *p, long n)
{
	mp_done d;
	done_init(&d, n);
	int64_t t0 = now_ns();
	for (long i = 0; i < n; i++)
		if (mp_submit(p, done_tick, &d) != 0)
			abort();
	done_wait(&d);
	int64_t t1 = now_ns();
	done_destroy(&d);
	return t1 - t0;
}

int64_t
bench_mpool_rtt(bench_mpool *p, long rounds)
{
	int64_t t0 = now_ns();
	for (long i = 0; i < rounds; i++) {
		mp_done d;
		done_init(&d, 1);
		if (mp_submit(p, done_tick, &d) != 0)
			abort();
		done_wait(&d);
		done_destroy(&d);
	}
	return now_ns() - t0;
}
