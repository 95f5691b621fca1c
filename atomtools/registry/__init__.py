"""The notebook registry: the pipeline's order, sizes, handoffs and default paths in one table.

Each notebook is one :class:`Notebook` entry of :data:`NOTEBOOKS`: its sizes at each
profile (``smoke`` runs every notebook in seconds for tests and CI; ``quick``, the
default, reproduces every figure on a 2-core CPU; ``paper`` is the source works'
scale, for a GPU or a cluster), which of its parameters read an artifact of an
earlier notebook and which write one (:data:`ARTIFACTS`: where each lives under
``results/<profile>/``). The pipeline (:mod:`atomtools.pipeline`) hands the paths on
from this table; a notebook run alone gets the same paths from :func:`paths`, so a
reader's run and the pipeline's agree. Engines know no notebook names: a notebook
turns its sizes into engine settings with :func:`split`, and the steps several
notebooks share are one call each here (:func:`training_set`).

Adding a notebook is one entry in :data:`NOTEBOOKS` (and its artifacts in
:data:`ARTIFACTS`); see ``ARCHITECTURE.md``.
"""

from . import setups, table
from .setups import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .table import *  # noqa: F403 - the module's public names, as its __all__ lists them

__all__ = [*setups.__all__, *table.__all__]
