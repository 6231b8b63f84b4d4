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


def test_visible_gpus_from_the_environment():
    from gift.devices import visible_gpus

    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,1,3"}) == 3
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == 0
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == 0
    assert visible_gpus({"SLURM_GPUS_ON_NODE": "4", "PATH": ""}) == 4


def test_a_fine_tuning_waits_for_the_servers_and_no_server_starts_beside_it(tmp_path, monkeypatch):
    """A real watchdog (running `sleep` in place of vLLM: live, never ready, no job holds it) stands for a
    server that stays up after the chain: ``python -m gift.serve claim -- CMD`` stops it before CMD runs, and
    while CMD runs the claim is there, which makes every job that asks for a server wait (gift.serve.manager)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    monkeypatch.setenv(manager.ROOT_ENV, str(tmp_path))
    owner = subprocess.Popen(["sleep", "600"])
    monkeypatch.setenv(manager.OWNER_ENV, f"{owner.pid}:{manager._start_time(owner.pid)}")
    monkeypatch.setenv("PYTHONPATH", str(root))
    try:
        d = tmp_path / "srv"
        manager._start(d, ["sleep", "600", "--model", "m", "--port", "0"], dict(manager.DEFAULTS), cpu=True)
        assert manager._local_servers(tmp_path) == [d]
        probe = "import sys; from gift.serve import manager as m; p = m.Path(sys.argv[1]); "
        probe += "print(len(m._local_servers(p)), len(m._claims(p)))"
        cmd = [sys.executable, "-m", "gift.serve", "claim", "--dir", str(tmp_path), "--"]
        cmd += [sys.executable, "-c", probe, str(tmp_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=root)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["0", "1"]  # inside: no server, one claim
        kinds = [line.split()[3] for line in (tmp_path / "events.log").read_text().splitlines()]
        assert kinds == ["start", "stop", "claim", "release"], kinds
        assert manager._claims(tmp_path) == []
    finally:
        manager.stop_all(root=tmp_path, timeout_s=20)
        owner.kill()
        owner.wait()
