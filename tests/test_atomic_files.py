"""Files replaced whole (newsletter.atomic_files), on real files in a temporary folder."""
from __future__ import annotations

import stat

import pytest

from newsletter.atomic_files import write_atomically


def test_a_new_file_gets_the_mode_asked_and_a_replaced_one_keeps_its_own(tmp_path):
    made, kept = tmp_path / "made.json", tmp_path / "kept.json"
    write_atomically(made, b"{}", new_mode=0o600)
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    write_atomically(kept, b"new")
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert (kept.read_bytes(), stat.S_IMODE(kept.stat().st_mode)) == (b"new", 0o640)


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "stripe-sandbox.json"
    write_atomically(path, b'{"format": 1}')
    with pytest.raises(TypeError):
        write_atomically(path, "not bytes")
    assert path.read_bytes() == b'{"format": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["stripe-sandbox.json"]


def test_the_folder_is_made_when_missing(tmp_path):
    path = tmp_path / "instance" / "deeper" / "rules.json"
    write_atomically(path, b"[]")
    assert path.read_bytes() == b"[]" and stat.S_IMODE(path.stat().st_mode) == 0o644
