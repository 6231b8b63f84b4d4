"""The served mode's state folder needs ``flock`` (its host lock): a folder that refuses it is found at the
start and named in one line with the workaround (fast; no server is started). No filesystem here refuses
``flock``, so the refusal is the one that Lustre mounted without ``-o flock`` gives (ENOSYS), raised by
``fcntl.flock`` itself."""

from __future__ import annotations

import errno
import fcntl

import pytest

from gift.serve import manager


def test_a_folder_with_flock_is_accepted(tmp_path):
    assert manager.flock_problem(tmp_path) is None
    with manager._host_lock(tmp_path):  # held: a second try does not block the check
        assert manager.flock_problem(tmp_path) is None


def test_a_folder_that_refuses_flock_stops_with_one_line(tmp_path, monkeypatch):
    def refuse(fd, op):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", refuse)
    why = manager.flock_problem(tmp_path)
    assert why is not None and "\n" not in why
    assert str(tmp_path) in why and manager.ROOT_ENV in why and "Function not implemented" in why
    with pytest.raises(RuntimeError) as e:
        with manager._host_lock(tmp_path):
            pass
    assert str(e.value) == why
