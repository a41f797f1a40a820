"""mebqat.atomic: a written file appears whole with a new file's ordinary permissions; a failed write
leaves neither the target nor a temp file."""

import os

import pytest

from mebqat.atomic import atomic_write


def test_written_file_has_the_ordinary_permissions_of_a_new_file(tmp_path):
    target = tmp_path / "sub" / "metrics.json"
    atomic_write(target, lambda f: f.write(b"{}\n"))
    mask = os.umask(0)
    os.umask(mask)
    assert target.read_bytes() == b"{}\n"
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # mkstemp alone would leave it 0600
    assert [p.name for p in target.parent.iterdir()] == ["metrics.json"]


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "checkpoint.pt"

    def fail(handle):
        handle.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, fail)
    assert list(tmp_path.iterdir()) == []
