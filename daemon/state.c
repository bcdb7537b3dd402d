/* SPDX-License-Identifier: MIT */
/*
 * The daemon's shared state (see state.h): its clocks and its thread-pool jobs, counted in
 * work_pending so that the shutdown waits for each one.
 */
#include "state.h"

#include <time.h>

uint64_t state_now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

uint64_t state_epoch_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void state_job_run(uv_work_t *work)
{
	struct state_job *job = (struct state_job *)work;

	job->run(job);
}

static void state_job_after(uv_work_t *work, int status)
{
	struct state_job *job = (struct state_job *)work;
	struct server *s = job->srv;

	/* Jobs are never cancelled, so status is always 0. */
	(void)status;
	s->work_pending--;
	job->done(job);
	state_check_finished(s);
}

int state_job_start(struct server *s, struct state_job *job, void (*run)(struct state_job *),
                     void (*done)(struct state_job *))
{
	int r;

	job->srv = s;
	job->run = run;
	job->done = done;
	r = uv_queue_work(s->loop, &job->work, state_job_run, state_job_after);
	if (r < 0)
		return r;
	s->work_pending++;
	return 0;
}

uint64_t state_uptime_ms(const struct server *s)
{
	return state_now_ms() - s->start_ms;
}

void state_check_finished(struct server *s)
{
	if (s->check_finished)
		s->check_finished(s);
}
