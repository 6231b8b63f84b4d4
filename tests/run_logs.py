"""What a served run's logs say, for the tests that check it: the model servers' events log
(``.snakemake/gift-serve/events.log``) and Snakemake's own log of the jobs it ran."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime


def no_finetuning_beside_a_server(lines: list[str]) -> int:
    """From the events log (one line per event, in the order they happened): between a fine-tuning's claim
    on the devices and its release no server is live, none having started before it still running and none
    starting. Returns the number of fine-tunings."""
    live, claims, n = set(), set(), 0
    for line in lines:
        what, name = line.split()[3], line.split()[4].rstrip(":")
        if what == "start":
            assert not claims, f"a server started while a fine-tuning ran: {line}"
            live.add(name)
        elif what == "stop":
            live.discard(name)
        elif what == "claim":
            assert not live, f"a fine-tuning began beside the live server(s) {live}: {line}"
            claims.add(name)
            n += 1
        elif what == "release":
            claims.discard(name)
    return n


def server_starts(lines: list[str]) -> Counter:
    """How many times a server started for each model (its folder, as the events log names it)."""
    return Counter(re.search(r" model=(\S+)", ln).group(1) for ln in lines if ln.split()[3] == "start")


_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]$")


def snakemake_jobs(log: str) -> dict[str, dict]:
    """Snakemake's log of a run (the local executor's, with its time stamps) as jobid -> {rule, start, end,
    input, output}: the time a job started and finished, and the files it read and wrote."""
    jobs: dict[str, dict] = {}
    stamp, current = None, None
    for line in log.splitlines():
        if m := _STAMP.match(line.strip()):
            stamp, current = datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y"), None
        elif (m := re.match(r"^(?:local)?rule (\w+):$", line.strip())) and stamp:
            current = {"rule": m.group(1), "start": stamp, "input": [], "output": []}
        elif current is not None and (m := re.match(r"^\s+(input|output): (.*)$", line)):
            current[m.group(1)] = [f.strip() for f in m.group(2).split(",")]
        elif current is not None and (m := re.match(r"^\s+jobid: (\d+)$", line)):
            jobs[m.group(1)] = current
        elif m := re.match(r"^Finished jobid: (\d+)", line.strip()):
            if m.group(1) in jobs:
                jobs[m.group(1)]["end"] = stamp
    return jobs


def queued_after_ready(jobs: dict[str, dict], rules: set[str]) -> dict[str, float]:
    """For every job of ``rules``: seconds from the moment its last input was written (the end of the job
    that wrote it; 0 when it needed no job of this run) to its start, i.e. the time it waited to be run."""
    made_by = {f: j for j in jobs.values() for f in j["output"]}
    waits = {}
    for jid, job in jobs.items():
        if job["rule"] not in rules:
            continue
        ends = [made_by[f]["end"] for f in job["input"] if f in made_by and made_by[f].get("end")]
        waits[f"{job['rule']} {jid}"] = (job["start"] - max(ends)).total_seconds() if ends else 0.0
    return waits


def idle_seconds(jobs: dict[str, dict], rules: set[str]) -> tuple[float, float]:
    """(seconds during which no job of ``rules`` ran, seconds from the first such job's start to the last
    one's end): how long the devices those jobs hold sat idle inside the run."""
    spans = sorted((j["start"], j["end"]) for j in jobs.values() if j["rule"] in rules and j.get("end"))
    idle, reach = 0.0, spans[0][1]
    for start, end in spans[1:]:
        idle += max(0.0, (start - reach).total_seconds())
        reach = max(reach, end)
    return idle, (reach - spans[0][0]).total_seconds()
