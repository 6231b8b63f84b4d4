"""The sandbox's child side: the fork server and the in-child harness.

Run as its own process (``python -I -c "... from child.server import main; main()"``, normally inside
``unshare --net --pid --mount``, see ``gift.sandbox.launch``), with this folder's parent as the only
import root: these modules import the standard library and each other, nothing of ``gift`` (a test
checks it), so a candidate, a fork of the server, holds nothing of the caller (no torch, no secrets).
The parent imports ``codec`` and ``oracle`` normally (``gift.sandbox.child.codec``): one value codec and
one EvalPlus oracle for both sides.

``preload``     what the server imports before forking, the environment candidates start from
``hook``        the audit hook: blocked events and imports, the MAC'd per-test record
``codec``       the value serialisers (APPS call results; the strict EvalPlus encoding) and its decoder
``oracle``      EvalPlus 0.3.1's per-input comparison and special oracles
``runner``      the candidate process: isolation, then the harness per test format
``candidates``  the server's side of one candidate: start, reap, sweep, CPU accounting
``server``      the event loop (requests in, verified records out) and ``main``

Protocol (stdin/stdout of the server, one JSON object per line):
  parent -> server: request  {"mode": "assert"|"humaneval"|"call"|"stdio"|"plus", "i": ..., ...}
  server -> parent: result   {"i": ..., "events": [...], "complete": bool, ...}
The first line the server writes is a hello object describing the isolation in effect. Per candidate
the server forks a child which starts a new session, points 0/1/2 at /dev/null, keeps only the
record pipe (moved to a random high fd), chdirs into a fresh temp dir, scrubs the environment, applies
rlimits, drops to a per-server unprivileged uid (when the interpreter stays readable) and installs the
audit hook, then runs the candidate. Results are lines MAC'd with a key created in the child after the
fork and sent to the server before any candidate code runs. See docs/execution.md.
"""
