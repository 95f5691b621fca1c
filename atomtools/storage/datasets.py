"""The dataset store: simulated data with their ground truth, in one Zarr group.

Each kind of dataset declares its :class:`Layout`: its format name, its per-item
arrays and their axes, and which attributes size them. The store itself (create,
resume, write a unit of items, mark done, finalize the parameter table, read lazily)
is the same for every layout. :data:`HRTEM` is the layout of the HRTEM image sets of
:mod:`atomtools.simulation.hrtem`; sinograms, movies and STEM images get layouts of
their own beside it.

The HRTEM layout (``N`` images of ``H x W`` pixels, ``C`` label channels, ``K`` images
per structure, image ``i`` showing structure ``i // K``)::

    attrs       format, config (JSON), seed, sampling [Å], energy [eV], shape,
                channels, n_classes, images_per_structure, versions, complete
    clean       (N, H, W)    float32  noise-free intensity, 1 in vacuum
    noisy       (N, H, W)    float32  electron counts at the image's dose
    labels      (N, C, H, W) uint8    atoms-per-column class, 0 = background
    distance    (N, C, H, W) float16  distance to the nearest column [Å]
    nearest     (N, C, H, W) uint8    class of the nearest column (for smoothed targets)
    weights     (N, H, W)    float32  per-pixel loss weights
    done        (N,)         bool     written last: an entry is whole once it is True
    params/NAME (N,)                  the per-image parameter table (after completion)
    structures/SSSSSS                 positions (n, 3) [Å], numbers (n,), column (n,),
                                      columns (m, 8) table; attrs: spec, cell, images

Every array is chunked per image, so training streams single images. Writes go
through Zarr's local store, which writes each chunk to a temporary file and renames
it; with ``done`` written last, a killed run leaves no entry that looks whole, and a
re-run (:func:`missing_structures`) redoes only what is not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from ..core import tables

__all__ = [
    "UnfinishedDatasetError",
    "Layout",
    "HRTEM",
    "INDEPENDENT",
    "ATOM_LIBRARY",
    "LAYOUTS",
    "create_or_resume",
    "write_structure",
    "missing_structures",
    "finalize",
    "Dataset",
    "open_dataset",
]


class UnfinishedDatasetError(ValueError):
    """A dataset store whose simulation was interrupted: run it again with the same parameters to complete it."""


@dataclass(frozen=True)
class Layout:
    """What one kind of dataset stores per item.

    Attributes
    ----------
    format : str
        Format name written to the store's attributes (with a version).
    arrays : tuple of (str, str, tuple of str)
        ``(name, dtype, axes)`` per array; each is chunked one item at a time, with
        shape ``(N, *sizes of axes)``. Axis sizes come from the store's attributes
        (:meth:`axis_sizes`).
    categorical : tuple of str
        Parameter-table columns stored as category codes.
    """

    format: str
    arrays: tuple[tuple[str, str, tuple[str, ...]], ...]
    categorical: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the per-item arrays."""
        return tuple(name for name, _, _ in self.arrays)

    @staticmethod
    def axis_sizes(attrs: dict) -> dict[str, int]:
        """Sizes of the named axes from a store's attributes.

        Parameters
        ----------
        attrs : dict
            ``shape`` (rows, cols) and, where used, ``n_channels``.
        """
        h, w = attrs["shape"]
        return {"y": int(h), "x": int(w), "channel": int(attrs.get("n_channels", 1))}


#: Simulated HRTEM images with their labels (:mod:`atomtools.simulation.hrtem`).
HRTEM = Layout(
    format="atomtools.hrtem-dataset/1",
    arrays=(
        ("clean", "float32", ("y", "x")),
        ("noisy", "float32", ("y", "x")),
        ("labels", "uint8", ("channel", "y", "x")),
        ("distance", "float16", ("channel", "y", "x")),
        ("nearest", "uint8", ("channel", "y", "x")),
        ("weights", "float32", ("y", "x")),
    ),
    categorical=("profile",),
)

#: Images for testing only: the clean image and the exact model, no training labels
#: (:mod:`atomtools.simulation.independent`).
INDEPENDENT = Layout(
    format="atomtools.independent-test/1",
    arrays=(("clean", "float32", ("y", "x")),),
    categorical=("profile", "builder", "parametrization"),
)

#: The atom-segmentation library (:mod:`atomtools.simulation.library`): per image the
#: noisy counts, the clean and sharp (deblurred) images, the Gaussian and disk masks;
#: the columns as imaged in ``structures/SSSSSS/positions`` (x, y [px], atoms).
ATOM_LIBRARY = Layout(
    format="atomtools.atom-library/1",
    arrays=(
        ("noisy", "float32", ("y", "x")),
        ("clean", "float32", ("y", "x")),
        ("sharp", "float32", ("y", "x")),
        ("gauss", "float16", ("y", "x")),
        ("disk", "uint8", ("y", "x")),
    ),
    categorical=("crystal", "zone", "mode"),
)

#: Every layout by its format name.
LAYOUTS = {layout.format: layout for layout in (HRTEM, INDEPENDENT, ATOM_LIBRARY)}


def _json_roundtrip(value):
    return json.loads(json.dumps(value, sort_keys=True))


def create_or_resume(
    path: str | Path, *, config: dict, seed: int, n_structures: int, attrs: dict, layout: Layout = HRTEM
) -> zarr.Group:
    """Open the store at ``path`` for writing: create it, or resume an unfinished one.

    Parameters
    ----------
    path : str or Path
        Directory of the Zarr store (conventionally ending in ``.zarr``).
    layout : Layout
        What each item holds.
    config : dict
        JSON-able simulation configuration; a store made with another one is refused.
    seed : int
        Master seed; likewise must match on resume.
    n_structures : int
        Number of structures.
    attrs : dict
        Further attributes: ``shape``, ``n_channels``, ``images_per_structure`` are
        required; anything else is stored as is.

    Returns
    -------
    zarr.Group
        The store open for writing: the existing unfinished one, or a new one with ``complete``
        False, the layout's arrays, ``done`` (all False) and an empty ``structures`` group.
    """
    path = Path(path)
    config = _json_roundtrip(config)
    k = int(attrs["images_per_structure"])
    n = n_structures * k
    if path.exists():
        try:
            group = zarr.open_group(path, mode="r+")
        except Exception as exc:  # not a zarr group at all
            raise ValueError(
                f"{path} exists and is not an atomtools dataset ({exc}); choose another path or remove it"
            ) from exc
        old = dict(group.attrs)
        if old.get("format") != layout.format:
            raise ValueError(
                f"{path} exists and is not an atomtools dataset (format {old.get('format')!r}); "
                "choose another path or remove it"
            )
        mismatched = [
            key
            for key in sorted(set(config) | set(old.get("config", {})))
            if config.get(key) != old.get("config", {}).get(key)
        ]
        if old.get("seed") != seed:
            mismatched.append("seed")
        if old.get("n_structures") != n_structures:
            mismatched.append("n_structures")
        if mismatched:
            raise ValueError(
                f"{path} holds a dataset made with other parameters ({', '.join(mismatched)}); "
                "it can only be resumed with the same ones: choose another path or remove it"
            )
        return group
    group = zarr.open_group(path, mode="w")
    group.attrs.update(
        _json_roundtrip(
            {
                **attrs,
                "format": layout.format,
                "config": config,
                "seed": seed,
                "n_structures": n_structures,
                "complete": False,
            }
        )
    )
    sizes = layout.axis_sizes(attrs)
    for name, dtype, axes in layout.arrays:
        item = tuple(sizes[a] for a in axes)
        group.create_array(name, shape=(n, *item), chunks=(1, *item), dtype=dtype, fill_value=0)
    group.create_array("done", shape=(n,), chunks=(1,), dtype="bool", fill_value=False)
    group.create_group("structures")
    return group


def write_structure(group: zarr.Group, result: dict) -> None:
    """Write one simulated structure (its ``K`` items and its model), then mark it done.

    Parameters
    ----------
    group : zarr.Group
        Store opened by :func:`create_or_resume`.
    result : dict
        One array per name of the store's layout (``K`` items each), ``index``, and
        the model: ``positions``, ``numbers``, ``column``, ``columns`` (the truth table
        as :func:`atomtools.core.tables.to_array` stores it), ``spec``, ``cell`` and
        ``images`` (per-item parameters), as
        :func:`atomtools.simulation.hrtem.simulate_structure` returns.
    """
    k = int(group.attrs["images_per_structure"])
    s = int(result["index"])
    sl = slice(s * k, (s + 1) * k)
    for name in LAYOUTS[group.attrs["format"]].names:
        group[name][sl] = result[name]
    sub = group.require_group(f"structures/{s:06d}")
    for name, value in (
        ("positions", result["positions"]),
        ("numbers", result["numbers"]),
        ("column", result["column"]),
        ("columns", result["columns"]),
    ):
        value = np.asarray(value)
        if name in sub:
            del sub[name]
        a = sub.create_array(
            name, shape=value.shape, dtype=value.dtype, chunks=tuple(max(1, n) for n in value.shape), fill_value=0
        )
        if value.size:
            a[...] = value
    sub.attrs.update(
        _json_roundtrip(
            {
                "spec": result["spec"],
                "cell": result["cell"],
                "images": result["images"],
                "table_fields": list(tables.STORED),
            }
        )
    )
    group["done"][sl] = True


def missing_structures(group: zarr.Group) -> list[int]:
    """Indices of structures with any item not yet whole.

    Parameters
    ----------
    group : zarr.Group
        An open store.

    Returns
    -------
    list of int
        The structure indices, ascending.
    """
    k = int(group.attrs["images_per_structure"])
    done = group["done"][:].reshape(-1, k)
    return [int(i) for i in np.flatnonzero(~done.all(axis=1))]


def finalize(group: zarr.Group) -> None:
    """Assemble the per-item parameter table and mark the store complete.

    Parameters
    ----------
    group : zarr.Group
        A store whose every structure is written.
    """
    if missing_structures(group):
        raise RuntimeError("cannot finalize a dataset with missing structures")
    rows = []
    for s in range(int(group.attrs["n_structures"])):
        rows.extend(group[f"structures/{s:06d}"].attrs["images"])
    table = pd.DataFrame(rows)
    params = group.require_group("params")
    for name in table.columns:
        values = table[name]
        if name in LAYOUTS[group.attrs["format"]].categorical or values.dtype == object:
            categories = sorted(values.astype(str).unique())
            codes = values.astype(str).map({c: i for i, c in enumerate(categories)}).to_numpy(np.int16)
            a = params.create_array(name, shape=codes.shape, dtype="int16", chunks=codes.shape, overwrite=True)
            a[...] = codes
            a.attrs["categories"] = categories
        else:
            kind = "int64" if values.dtype.kind in "iub" else "float64"
            v = values.to_numpy(kind)
            a = params.create_array(name, shape=v.shape, dtype=kind, chunks=v.shape, overwrite=True)
            a[...] = v
    params.attrs["columns"] = list(table.columns)
    group.attrs["complete"] = True


@dataclass
class Dataset:
    """Read-only view of a finished dataset store; arrays are read lazily per image.

    Examples
    --------
    ``ds = open_dataset("train.zarr"); ds.clean[3]``, ``ds.params.dose``,
    ``ds.columns(3)``, ``ds.atoms(3)``.
    """

    path: Path
    group: zarr.Group

    @property
    def attrs(self) -> dict:
        return dict(self.group.attrs)

    def __len__(self) -> int:
        return int(self.group["clean"].shape[0])

    @property
    def layout(self) -> Layout:
        """The store's :class:`Layout`."""
        return LAYOUTS[self.group.attrs["format"]]

    def __getattr__(self, name):
        if name in ("path", "group"):
            raise AttributeError(name)
        if name in self.layout.names:
            return self.group[name]
        raise AttributeError(name)

    @property
    def sampling(self) -> float:
        return float(self.group.attrs["sampling"])

    @property
    def images_per_structure(self) -> int:
        return int(self.group.attrs["images_per_structure"])

    @property
    def params(self) -> pd.DataFrame:
        """Per-image parameter table (one row per image)."""
        out = {}
        for name, a in self.group["params"].arrays():
            values = a[:]
            if "categories" in a.attrs:
                values = np.asarray(a.attrs["categories"], dtype=object)[values]
            out[name] = values
        order = self.group["params"].attrs.get("columns", sorted(out))
        return pd.DataFrame({name: out[name] for name in order})

    def _structure(self, i: int) -> zarr.Group:
        if not 0 <= i < len(self):
            raise IndexError(f"image index {i} out of range for a dataset of {len(self)} images")
        return self.group[f"structures/{i // self.images_per_structure:06d}"]

    def columns(self, i: int) -> pd.DataFrame:
        """Ground-truth column table of image ``i`` (:data:`atomtools.core.tables.TRUTH`).

        Parameters
        ----------
        i : int
            Image index.
        """
        sub = self._structure(i)
        fields = sub.attrs["table_fields"]
        values = sub["columns"][:] if sub["columns"].size else np.zeros((0, len(fields)))
        return tables.from_array(values, sampling=self.sampling, fields=fields)

    def atoms(self, i: int):
        """The exact 3D model of image ``i`` as ``ase.Atoms`` (with its ``column`` array).

        Parameters
        ----------
        i : int
            Image index.
        """
        from ase import Atoms

        sub = self._structure(i)
        atoms = Atoms(numbers=sub["numbers"][:], positions=sub["positions"][:], cell=sub.attrs["cell"], pbc=True)
        atoms.arrays["column"] = sub["column"][:].astype(np.int64)
        return atoms

    def image_params(self, i: int) -> dict:
        """Parameters of image ``i`` as a dict.

        Parameters
        ----------
        i : int
            Image index.
        """
        sub = self._structure(i)
        return dict(sub.attrs["images"][i % self.images_per_structure])


def open_dataset(path: str | Path) -> Dataset:
    """Open a finished dataset store read-only.

    Parameters
    ----------
    path : str or Path
        The store.

    Returns
    -------
    Dataset
        The dataset, opened read-only.

    Raises
    ------
    FileNotFoundError
        If there is nothing at ``path``.
    ValueError
        If ``path`` is no atomtools dataset.
    UnfinishedDatasetError
        If it is an unfinished one (re-run the simulation with the same parameters to
        complete it); a ValueError too.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no dataset at {path}: simulate one with atomtools.make_dataset or notebook 01_simulate"
        )
    try:
        group = zarr.open_group(path, mode="r")
    except Exception as exc:
        raise ValueError(f"{path} is not a Zarr dataset store ({exc})") from exc
    if group.attrs.get("format") not in LAYOUTS:
        raise ValueError(
            f"{path} is not an atomtools dataset (format {group.attrs.get('format')!r}, expected "
            f"one of {sorted(LAYOUTS)})"
        )
    if not group.attrs.get("complete"):
        raise UnfinishedDatasetError(
            f"{path} is an unfinished dataset: run the simulation again with the same parameters to complete it"
        )
    return Dataset(path=path, group=group)
