/*
 * task.h: the unit of work the runtime schedules.
 *
 * A task is intrusive: the tracking layer embeds it in its execution record,
 * so scheduling never allocates.  A pool runs every task with the one
 * function its creator gave it (pf__pool_config.run), which finds its
 * record from the task's address: no function pointer per task, 8 bytes
 * off every execution record.  What a task is and how long it lives is the
 * embedder's business.
 */
#ifndef PF_TASK_H
#define PF_TASK_H

typedef struct pf__task pf__task;
typedef void (*pf__task_fn)(pf__task *t);

struct pf__task {
	/* Link for the injector queue; owned by the queue while queued. */
	_Atomic(pf__task *) next;
};

#endif /* PF_TASK_H */
