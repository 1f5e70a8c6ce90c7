/*
 * task.h: the unit of work the runtime schedules.
 *
 * A task is intrusive: the tracking layer embeds it in its execution record,
 * so scheduling never allocates.  The runtime only ever calls run(); what a
 * task is and how long it lives is the embedder's business.
 */
#ifndef PF_TASK_H
#define PF_TASK_H

typedef struct pf__task pf__task;
typedef void (*pf__task_fn)(pf__task *t);

struct pf__task {
	pf__task_fn run;
	/* Link for the injector queue; owned by the queue while queued. */
	_Atomic(pf__task *) next;
};

#endif /* PF_TASK_H */
