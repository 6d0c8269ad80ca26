#!/usr/bin/env python3
"""A history checker for the fault scripts, in the spirit of Jepsen's: every operation a client
attempts is recorded with its node, its real-time start and end and its outcome — `ok` (the API
acknowledged it: on disk), `fail` (the API refused it: it did not happen) or `info` (no answer: it
may or may not have happened). Once the cluster has converged, the final state is checked against
the history:

- a grow-only counter equals the sum of its acknowledged increments, plus at most the ambiguous
  ones (never less: nothing acknowledged lost; never more: nothing invented);
- a grow-only set holds every acknowledged element, and nothing never attempted;
- a last-writer-wins register holds a value that was written, and no acknowledged write that began
  after that value's write ended (beyond the clock's resolution) — that later write must have won.

Standard library only. `python3 scripts/history.py --self-test` checks the checker on
histories built to pass and to fail.
"""

import sys
import threading
import time

# Two writes closer than this in real time may be ordered either way by last-writer-wins: the
# stamps are milliseconds of the nodes' clocks (one machine's clock in the fault scripts).
CLOCK_RESOLUTION_S = 0.005


class History:
    """Operations as clients saw them; thread-safe."""

    def __init__(self):
        self.ops, self.lock = [], threading.Lock()

    def record(self, node, kind, key, value, start, end, outcome):
        with self.lock:
            self.ops.append({"node": node, "kind": kind, "key": key, "value": value,
                             "start": start, "end": end, "outcome": outcome})

    def run(self, node, kind, key, value, call):
        """Runs `call()` (the API request), recording it: `ok` if it returns; `fail` if the API
        refused it (a 4xx answer) or nothing listened (connection refused); `info` otherwise (a
        timeout, a 5xx: it may have happened). Returns the outcome."""
        start = time.time()
        try:
            call()
            outcome = "ok"
        except Exception as e:  # noqa: BLE001 - the outcome is what matters, not the error type
            code = getattr(e, "code", None)
            # urllib wraps a refused connection in a URLError whose `reason` is the OSError.
            refused = isinstance(e, ConnectionRefusedError) or isinstance(getattr(e, "reason", None), ConnectionRefusedError)
            outcome = "fail" if refused or (isinstance(code, int) and 400 <= code < 500) else "info"
        self.record(node, kind, key, value, start, time.time(), outcome)
        return outcome

    def count(self, outcome=None):
        return sum(1 for o in self.ops if outcome is None or o["outcome"] == outcome)


def check(history, final):
    """Checks `final` (key -> materialised value, as `GET /v1/objects/KEY` gives it) against
    `history`. Returns a dict: `ok`, `lost` (acknowledged writes missing), `ambiguous`, and one
    problem string per violation in `problems`."""
    problems, lost = [], 0
    by_key = {}
    for o in history.ops:
        by_key.setdefault((o["kind"], o["key"]), []).append(o)
    for (kind, key), ops in sorted(by_key.items()):
        acked = [o for o in ops if o["outcome"] == "ok"]
        maybe = [o for o in ops if o["outcome"] == "info"]
        value = final.get(key)
        if kind == "inc":
            low = sum(o["value"] for o in acked)
            high = low + sum(o["value"] for o in maybe)
            got = value or 0
            if not low <= got <= high:
                problems.append(f"counter {key} = {got}, acked increments sum to {low} (at most {high} with the ambiguous)")
                lost += max(0, low - got)
        elif kind == "add":
            held = set(value or [])
            missing = {o["value"] for o in acked} - held
            attempted = {o["value"] for o in ops if o["outcome"] != "fail"}
            invented = held - attempted
            lost += len(missing)
            if missing:
                problems.append(f"set {key} lacks {len(missing)} acknowledged elements, e.g. {sorted(missing)[:3]}")
            if invented:
                problems.append(f"set {key} holds {len(invented)} elements never written, e.g. {sorted(invented)[:3]}")
        elif kind == "set":
            writes = [o for o in ops if o["outcome"] != "fail" and o["value"] == value]
            if not writes:
                if acked:
                    problems.append(f"register {key} holds {value!r}, never written")
                continue
            # The earliest end of a write of the final value: any acknowledged write that began
            # after it (beyond the clock's resolution) should have won.
            end = min(o["end"] for o in writes)
            later = [o for o in acked if o["value"] != value and o["start"] > end + CLOCK_RESOLUTION_S]
            if later:
                w = min(later, key=lambda o: o["start"])
                problems.append(f"register {key} holds {value!r}, overwritten by {w['value']!r} "
                                f"(acknowledged, begun {w['start'] - end:.3f} s after it was written)")
                lost += 1
        else:
            problems.append(f"unknown operation kind {kind}")
    return {"ok": not problems, "lost": lost, "ambiguous": history.count("info"),
            "acked": history.count("ok"), "problems": problems}


def self_test():
    """Histories built to pass and to fail."""
    def history(ops):
        h = History()
        for node, kind, key, value, start, end, outcome in ops:
            h.record(node, kind, key, value, start, end, outcome)
        return h

    good = history([
        (0, "inc", "c", 2, 0.0, 0.1, "ok"), (1, "inc", "c", 3, 0.0, 0.1, "info"),
        (0, "add", "s", "a", 0.0, 0.1, "ok"), (1, "add", "s", "b", 0.0, 0.1, "info"),
        (0, "set", "r", "x", 0.0, 0.1, "ok"), (1, "set", "r", "y", 0.05, 0.2, "ok"),
    ])
    # y began before x's write ended: concurrent, either may win.
    for final in ({"c": 2, "s": ["a"], "r": "x"}, {"c": 5, "s": ["a", "b"], "r": "y"}):
        result = check(good, final)
        assert result["ok"], (final, result)
    assert check(good, {"c": 2, "s": ["a"], "r": "x"})["ambiguous"] == 2
    bad = [
        ({"c": 1, "s": ["a"], "r": "x"}, "counter c = 1"),          # an acked increment lost
        ({"c": 6, "s": ["a"], "r": "x"}, "counter c = 6"),          # more than was ever written
        ({"c": 2, "s": [], "r": "x"}, "lacks 1 acknowledged"),      # an acked element lost
        ({"c": 2, "s": ["a", "z"], "r": "x"}, "never written"),     # an element invented
        ({"c": 2, "s": ["a"], "r": "q"}, "never written"),          # a register value invented
    ]
    for final, problem in bad:
        result = check(good, final)
        assert not result["ok"] and any(problem in p for p in result["problems"]), (final, result)
    # A write begun after the final value's write ended should have won.
    stale = history([(0, "set", "r", "old", 0.0, 0.1, "ok"), (1, "set", "r", "new", 0.5, 0.6, "ok")])
    result = check(stale, {"r": "old"})
    assert not result["ok"] and result["lost"] == 1, result
    assert check(stale, {"r": "new"})["ok"]
    print("history checker self-test: ok")


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        self_test()
    else:
        sys.exit(__doc__)
