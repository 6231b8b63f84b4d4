"""Stand-ins for the full data a paper config names (not in the repository): empty files and folders at its
data paths inside a dry run's working directory. A dry run checks that they exist and reads none of them
(the data job would), so the DAG of a paper config can be planned without the releases."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def stand_in_data(configfile, workdir) -> list[Path]:
    """Create each local data path of ``configfile`` (``data.path``, ``data.seed.path``, ``data.test.path``)
    under ``workdir``: a file when the name has a suffix, else a folder. Returns what was made."""
    data = yaml.safe_load(Path(configfile).read_text()).get("data") or {}
    paths = [data.get("path")] + [(data.get(s) or {}).get("path") for s in ("seed", "test")]
    made = []
    for p in paths:
        if not p or ":" in p.split("/")[0] or Path(p).is_absolute() or (ROOT / p).exists():
            continue  # hf: specs, URLs, data the repository ships
        target = Path(workdir) / p
        if Path(p).suffix:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        else:
            target.mkdir(parents=True, exist_ok=True)
        made.append(target)
    return made
