"""Work 1: atoms per column from one noisy HRTEM frame, and the 3D model they give.

- :mod:`retrieval`: :func:`retrieve` a frame's columns, counts and confidence with a
  trained U-Net (on the shared tiled inference), the counts of the principal species by
  the column counter, decoded particle by particle, with prediction sets;
- :mod:`counting`: the column counter that knows the imaging conditions (their
  encoding: :mod:`conditions`; its training: :mod:`counter_task`);
- :mod:`task`: the U-Net's training task on simulated datasets (on the shared loop);
- :mod:`baseline`: the classical method, peaks and calibrated integrated intensities;
- :mod:`reconstruct`: a 3D atomic model from a column table;
- :mod:`evaluation`: network and baseline scored alike against dose (:mod:`report`: the
  numbers a run records);
- :mod:`series`: in-situ movies, :func:`~series.run_series` on :mod:`drift` (drift and
  pooling), :mod:`tracks` (tracks of columns, count timelines) and :mod:`events` (events
  and their scores).
"""

from . import (
    baseline,
    conditions,
    counter_task,
    counting,
    domain,
    drift,
    evaluation,
    events,
    reconstruct,
    recounting,
    report,
    retrieval,
    series,
    task,
    tracks,
)
from .retrieval import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .task import *  # noqa: F403 - the module's public names, as its __all__ lists them

__all__ = [*retrieval.__all__, *task.__all__]
