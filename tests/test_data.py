"""The manifest and the pooch fetcher, against loopback servers only."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml

from atomtools import data
from atomtools.cli import main

from .conftest import REPO, SHARED_MIRROR


def test_manifest_is_complete_and_valid():
    entries = data.load_manifest()
    assert entries, "the manifest lists no files"
    for e in entries.values():
        assert e.url.startswith("https://"), e.name
        assert re.fullmatch(r"[0-9a-f]{64}", e.sha256), e.name
        assert e.size > 0 and e.licence and e.citation and e.description and e.notebooks, e.name


def _mirror_rows():
    readme = SHARED_MIRROR / "README.md"
    if not readme.is_file():
        return []
    rows = []
    for line in readme.read_text().splitlines():
        m = re.match(r"\| `([^`]+)` \| (\S+) \| (\d+) \| ([0-9a-f]{64}) \|", line)
        if m:
            rows.append(m.groups())
    return rows


def test_manifest_lists_every_mirrored_file_under_its_canonical_url():
    rows = _mirror_rows()
    if not rows:
        pytest.skip(f"the shared data mirror is absent ({SHARED_MIRROR})")
    by_url = {e.url: e for e in data.load_manifest().values()}
    for path, url, size, digest in rows:
        assert url in by_url, f"{url} is mirrored but not in data_manifest.yml"
        e = by_url[url]
        assert (e.file, e.size, e.sha256) == (path, int(size), digest)


def test_every_mirrored_entry_downloads_through_the_real_code_path(mirror, monkeypatch, tmp_path):
    monkeypatch.setenv("ATOMTOOLS_DATA_URL", mirror)
    rows = _mirror_rows()
    entries = {e.file: e for e in data.load_manifest().values()}
    for path, _url, size, digest in rows:
        local = data.fetch(entries[path].name)
        assert local.is_file() and local.stat().st_size == int(size)
        assert data.sha256(local) == digest
        assert Path(data.cache_dir()) in local.parents
    status = {r["name"]: r["status"] for r in data.verify()}
    assert all(status[entries[p].name] == "ok" for p, *_ in rows)


def _manifest_for(
    tmp_path: Path, files: dict[str, bytes], *, wrong_hash: set[str] = frozenset(), shipped: dict | None = None
) -> Path:
    server_dir = tmp_path / "server"
    items = []
    for name, payload in files.items():
        (server_dir / "test").mkdir(parents=True, exist_ok=True)
        (server_dir / "test" / f"{name}.bin").write_bytes(payload)
        digest = hashlib.sha256(payload + (b"x" if name in wrong_hash else b"")).hexdigest()
        item = {
            "name": name,
            "file": f"test/{name}.bin",
            "url": f"https://example.invalid/{name}.bin",
            "sha256": digest,
            "size": len(payload),
            "kind": "dataset",
            "licence": "CC0",
            "citation": "test",
            "description": "test file",
            "notebooks": ["01_simulate"],
        }
        if shipped and name in shipped:
            item["shipped"] = shipped[name]
        items.append(item)
    manifest = tmp_path / "manifest.yml"
    manifest.write_text(yaml.safe_dump({"version": 1, "files": items}))
    return manifest


def test_fetch_downloads_once_and_then_uses_the_cache(tmp_path, serve, monkeypatch):
    manifest = _manifest_for(tmp_path, {"good": b"hello atoms" * 100})
    monkeypatch.setenv("ATOMTOOLS_MANIFEST", str(manifest))
    monkeypatch.setenv("ATOMTOOLS_DATA_URL", serve(tmp_path / "server"))
    first = data.fetch("good")
    assert first.read_bytes() == b"hello atoms" * 100
    (tmp_path / "server" / "test" / "good.bin").unlink()  # a second fetch must not need the server
    assert data.fetch("good") == first


def test_corrupted_download_names_both_hashes_and_leaves_nothing(tmp_path, serve, monkeypatch):
    manifest = _manifest_for(tmp_path, {"bad": b"corrupted payload"}, wrong_hash={"bad"})
    monkeypatch.setenv("ATOMTOOLS_MANIFEST", str(manifest))
    monkeypatch.setenv("ATOMTOOLS_DATA_URL", serve(tmp_path / "server"))
    expected = data.entry("bad").sha256
    actual = hashlib.sha256(b"corrupted payload").hexdigest()
    with pytest.raises(ValueError) as err:
        data.fetch("bad")
    assert expected in str(err.value) and actual in str(err.value)
    cache = Path(data.cache_dir())
    leftovers = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
    assert leftovers == []


def test_offline_error_says_which_file_from_where_and_how_to_provide_it(tmp_path, monkeypatch):
    manifest = _manifest_for(tmp_path, {"away": b"data"})
    monkeypatch.setenv("ATOMTOOLS_MANIFEST", str(manifest))
    with pytest.raises(data.DataUnavailableError) as err:
        data.fetch("away")
    msg = str(err.value)
    assert "away" in msg and "test/away.bin" in msg and "ATOMTOOLS_DATA_URL" in msg and str(data.cache_dir()) in msg


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError) as err:
        data.fetch("no-such-file")
    for name in data.load_manifest():
        assert name in str(err.value)


def test_shipped_file_is_used_in_place_after_its_hash_checks(tmp_path, monkeypatch):
    shipped = tmp_path / "weights.bin"
    shipped.write_bytes(b"weights")
    manifest = _manifest_for(tmp_path, {"w": b"weights"}, shipped={"w": "weights.bin"})
    monkeypatch.setenv("ATOMTOOLS_MANIFEST", str(manifest))
    assert data.fetch("w") == shipped
    shipped.write_bytes(b"tampered")
    with pytest.raises(ValueError, match="shipped"):
        data.fetch("w")


def test_manifest_errors_name_the_entry_and_field(tmp_path, monkeypatch):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        yaml.safe_dump(
            {
                "files": [
                    {
                        "name": "x",
                        "file": "x",
                        "url": "https://x",
                        "sha256": "123",
                        "size": 1,
                        "kind": "dataset",
                        "licence": "l",
                        "citation": "c",
                        "description": "d",
                        "notebooks": [],
                    }
                ]
            }
        )
    )
    with pytest.raises(ValueError, match=r"files\[0\] \(x\): sha256"):
        data.load_manifest(bad)


def test_cli_data_commands(tmp_path, serve, monkeypatch, capsys):
    manifest = _manifest_for(tmp_path, {"good": b"payload"})
    monkeypatch.setenv("ATOMTOOLS_MANIFEST", str(manifest))
    monkeypatch.setenv("ATOMTOOLS_DATA_URL", serve(tmp_path / "server"))
    assert main(["data", "list"]) == 0
    assert "missing" in capsys.readouterr().out
    assert main(["data", "fetch", "good"]) == 0
    assert main(["data", "verify"]) == 0
    assert "ok" in capsys.readouterr().out
    cached = data.cache_dir() / "test" / "good.bin"
    cached.write_bytes(b"rotten")
    assert main(["data", "verify"]) == 1
    assert main(["data", "fetch", "nope"]) == 2
    assert "known: good" in capsys.readouterr().err


def test_repository_manifest_is_the_one_in_use():
    assert data.manifest_path() == REPO / "data_manifest.yml"


def test_ship_weights_writes_replaces_and_places_an_entry(tmp_path):
    from atomtools.data import ship_weights

    manifest = tmp_path / "data_manifest.yml"
    manifest.write_text((Path(data.manifest_path())).read_text(encoding="utf-8"), encoding="utf-8")
    weights = tmp_path / "atomtools" / "weights" / "new.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"first")
    names = list(data.load_manifest(manifest))
    e = ship_weights(
        "new-net",
        weights,
        citation='a "quoted" work',
        description="A net. " * 40,
        notebooks=["06_x"],
        before=names[1],
        manifest=manifest,
    )
    assert e.sha256 == hashlib.sha256(b"first").hexdigest() and e.size == 5 and e.citation == 'a "quoted" work'
    assert e.shipped == "atomtools/weights/new.pt" and e.file == "weights/new.pt" and e.notebooks == ("06_x",)
    assert list(data.load_manifest(manifest)) == [names[0], "new-net", *names[1:]]
    weights.write_bytes(b"second")  # retrained: the entry is refreshed where it stands, nothing else moves
    e = ship_weights("new-net", weights, citation="c", description="d", notebooks=["06_x"], manifest=manifest)
    assert e.sha256 == hashlib.sha256(b"second").hexdigest() and e.description == "d"
    assert list(data.load_manifest(manifest)) == [names[0], "new-net", *names[1:]]
    outside = tmp_path.parent / "elsewhere.pt"
    outside.write_bytes(b"x")
    with pytest.raises(ValueError, match="only weights shipped"):
        ship_weights("x", outside, citation="c", description="d", notebooks=[], manifest=manifest)


def test_an_image_pixel_size_lives_in_the_manifest(tmp_path):
    """Pixel sizes that real files do not state are manifest facts, checked like any pixel size."""
    entries = data.load_manifest()
    assert entries["atomsegnet-si110"].sampling == pytest.approx(50.0 / 512)
    assert entries["atomsegnet-dso"].sampling == pytest.approx(80.0 / 1024)
    assert entries["atomsegnet-gold-grain-boundary"].sampling is None
    assert entries["atomsegnet-gold-grain-boundary"].extra["region"] == [0, 150, 0, 512]
    item = {
        "name": "x",
        "file": "x",
        "url": "https://x",
        "sha256": "0" * 64,
        "size": 1,
        "kind": "experiment",
        "licence": "l",
        "citation": "c",
        "description": "d",
        "notebooks": [],
        "sampling": -0.1,
    }
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"files": [item]}))
    with pytest.raises(ValueError, match=r"files\[0\] \(x\): sampling"):
        data.load_manifest(bad)
