"""Running simulation tasks here or on a Dask cluster, writing each result as it arrives.

:func:`run_tasks` is the one place the package talks to Dask: a ``LocalCluster`` of
single-threaded processes by default, or any running scheduler by address (for
example a cluster started with dask-jobqueue), or ``"synchronous"`` to run in this
process. At most twice as many tasks as workers are in flight, so memory stays
bounded however many tasks there are, and results are handed to ``write`` in the
order they finish (tasks must not depend on that order). :func:`fill_store` is the
one path from a recipe to a dataset store: resume, run what is missing, finish.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from ..storage import datasets as _store
from ..utils import progress_bar

__all__ = ["run_tasks", "fill_store"]


def run_tasks(
    tasks: Iterable, work: Callable, write: Callable, *, args=(), scheduler=None, n_workers=None, on_done=None
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


def fill_store(
    out: str | Path,
    *,
    layout,
    config: dict,
    seed: int,
    n_structures: int,
    attrs: dict,
    task: Callable,
    work: Callable,
    args: tuple = (),
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: bool = True,
    unit: str = "structure",
) -> Path:
    """Simulate the structures a dataset store still lacks, write them, and finish the store.

    The one path from a recipe to a store: create it or resume an unfinished one (a
    store made with other settings is refused), run ``work(task(i), *args)`` for every
    missing structure ``i`` with :func:`run_tasks`, write each result as it arrives,
    then assemble the parameter table.

    Parameters
    ----------
    out : str or Path
        Store path (``*.zarr``).
    layout : atomtools.storage.Layout
        What each item holds.
    config : dict
        JSON-able settings; a store made with others is refused.
    seed : int
        Master seed (likewise).
    n_structures : int
        Structures in the store.
    attrs : dict
        Store attributes (``shape``, ``n_channels``, ``images_per_structure``, ...).
    task : callable
        ``task(index)``: the unit of work of structure ``index``.
    work : callable
        ``work(unit, *args) -> result`` as :func:`atomtools.storage.write_structure` takes.
    args : tuple
        Further arguments of ``work``.
    scheduler, n_workers
        As for :func:`run_tasks`.
    progress : bool
        Show a progress bar.
    unit : str
        What the bar counts.

    Returns
    -------
    Path
        The finished store.
    """
    if int(n_structures) < 1:
        raise ValueError(f"n_structures must be >= 1, got {n_structures}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    group = _store.create_or_resume(
        out, config=config, seed=int(seed), n_structures=int(n_structures), attrs=attrs, layout=layout
    )
    todo = _store.missing_structures(group)
    bar = progress_bar(
        total=int(n_structures),
        initial=int(n_structures) - len(todo),
        desc=f"simulating {out.name}",
        unit=unit,
        disable=not progress,
    )
    try:
        run_tasks(
            [task(i) for i in todo],
            work,
            lambda result: _store.write_structure(group, result),
            args=args,
            scheduler=scheduler,
            n_workers=n_workers,
            on_done=bar.update,
        )
    finally:
        bar.close()
    _store.finalize(group)
    return out
