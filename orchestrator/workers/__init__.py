"""Workers: detached runs executed by worker processes over one Postgres database.

`orchestrator run WORKFLOW --detach` queues a run; `orchestrator worker` executes queued runs
(procrastinate jobs, one lock per run, on top of the run's lease); `status RUN --wait` blocks
until the run settles.
"""

from orchestrator.workers._queue import RunQueue, ensure_schema, job_states, require_postgres

__all__ = ["RunQueue", "ensure_schema", "job_states", "require_postgres"]
