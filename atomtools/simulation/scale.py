"""Running simulation tasks here or on a Dask cluster, writing each result as it arrives.

:func:`run_tasks` is the one place the package talks to Dask: a ``LocalCluster`` of
single-threaded processes by default, or any running scheduler by address (for
example a cluster started with dask-jobqueue), or ``"synchronous"`` to run in this
process. At most twice as many tasks as workers are in flight, so memory stays
bounded however many tasks there are, and results are handed to ``write`` in the
order they finish (tasks must not depend on that order).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

__all__ = ["run_tasks"]


def run_tasks(
    tasks: Iterable,
    work: Callable,
    write: Callable,
    *,
    args: tuple = (),
    scheduler: str | None = None,
    n_workers: int | None = None,
    on_done: Callable[[], None] | None = None,
) -> None:
    """Run ``work(task, *args)`` for every task and ``write(result)`` each result here.

    Parameters
    ----------
    tasks : iterable
        Units of work (picklable).
    work : callable
        ``work(task, *args) -> result``; a module-level function (it is shipped to
        the workers).
    write : callable
        ``write(result)``, called in this process as results arrive.
    args : tuple
        Further arguments of ``work`` (shipped with every task).
    scheduler : str, optional
        ``None``: a local cluster of ``n_workers`` single-threaded processes;
        ``"synchronous"``: run here, one task after the other; else the address of a
        running Dask scheduler (``tcp://host:8786``).
    n_workers : int, optional
        Workers of the local cluster (default: the number of CPU cores).
    on_done : callable, optional
        Called after each result is written (a progress bar's ``update``).
    """
    tasks = list(tasks)
    on_done = on_done or (lambda: None)
    if scheduler == "synchronous" or not tasks:
        for task in tasks:
            write(work(task, *args))
            on_done()
        return
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        window = 2 * len(client.scheduler_info().get("workers", {})) + 2
        pending = iter(tasks)
        futures = as_completed()
        for task in pending:
            futures.add(client.submit(work, task, *args, pure=False))
            if futures.count() >= window:
                break
        for future in futures:
            write(future.result())
            future.release()
            on_done()
            task = next(pending, None)
            if task is not None:
                futures.add(client.submit(work, task, *args, pure=False))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
