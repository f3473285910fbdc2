"""The host build of the kernels lives in a private per-user cache and is verified before
it is loaded: a planted, altered or shared file is never loaded."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile

import pytest

from gpusim.backends import host


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("GPUSIM_CACHE", str(folder))
    return folder


def _lib(folder, stem, data: bytes, name_hash: str | None = None):
    digest = name_hash or hashlib.sha256(data).hexdigest()
    path = folder / f"{stem}-{digest}.so"
    path.write_bytes(data)
    path.chmod(0o755)
    return path


def test_the_cache_is_private_and_not_in_tmp(cache, monkeypatch):
    assert host.cache_dir() == cache
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    monkeypatch.delenv("GPUSIM_CACHE")
    default = host.cache_dir()
    assert not str(default).startswith(tempfile.gettempdir())
    assert default.stat().st_uid == os.getuid()


def test_a_shared_or_linked_cache_is_refused(cache, tmp_path, monkeypatch):
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    with pytest.raises(RuntimeError, match="not private"):
        host.cache_dir()
    cache.chmod(0o700)
    link = tmp_path / "link"
    link.symlink_to(cache)
    monkeypatch.setenv("GPUSIM_CACHE", str(link))
    with pytest.raises(RuntimeError, match="not private"):
        host.cache_dir()


def test_only_a_library_matching_its_digest_is_loaded(cache):
    folder = host.cache_dir()
    stem = "libgpusim_host-test"
    planted = _lib(folder, stem, b"planted", name_hash="0" * 64)
    assert host._verified(folder, stem) is None  # its name does not match its bytes
    good = _lib(folder, stem, b"built")
    assert host._verified(folder, stem) == good
    good.write_bytes(b"altered")
    assert host._verified(folder, stem) is None
    planted.unlink()
    shared = _lib(folder, stem, b"shared")
    shared.chmod(0o777)
    with pytest.raises(RuntimeError, match="not private"):
        host._verified(folder, stem)


def test_the_library_builds_and_loads_from_the_private_cache(cache):
    if host.host_compiler() is None:
        pytest.skip("no C++ compiler")
    host.host_library.cache_clear()
    try:
        library = host.host_library()
        assert os.path.dirname(library._name) == str(cache)
        assert host.philox_host((0, 0, 0, 0), (0, 0)) == (0x6627E8D5, 0xE169C58D,
                                                          0xBC57AC4C, 0x9B00DBD8)
    finally:
        host.host_library.cache_clear()
