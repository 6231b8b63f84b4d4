"""A candidate's record as the server reads it back: a key line, then MAC-chained event lines."""

from _blake2 import blake2b  # (hashlib would load OpenSSL: ~4 MB more to copy at every fork)


def _verify(raw):
    """Parse the record: first line carries the key, every further line must be
    ``seq body mac`` with consecutive seq and a valid MAC."""
    lines = raw.split(b"\n")
    res = {"events": [], "complete": False, "tampered": False, "has_key": False}
    if not lines or not lines[0].startswith(b"K "):
        return res
    try:
        key = bytes.fromhex(lines[0][2:].decode())
    except ValueError:
        return res
    res["has_key"] = True
    seq = 0
    for ln in lines[1:]:
        if not ln:
            continue
        try:
            s = ln.decode()
            line, mac = s.rsplit(" ", 1)
            n, body = line.split(" ", 1)
        except ValueError:
            res["tampered"] = True
            break
        good = blake2b(line.encode(), key=key, digest_size=16).hexdigest()
        if mac != good or n != str(seq):
            res["tampered"] = True
            break
        seq += 1
        if body == "X tamper":
            res["tampered"] = True
            break
        if body == "E":
            res["complete"] = True
            break
        res["events"].append(body)
    return res
