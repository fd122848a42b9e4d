"""Fault bench: kill parcelwatch's jobs at seeded random points and count what went wrong.

    .venv/bin/python bench/faults.py [--trials 50] [--days 14] [--seed 1000]

Each trial runs the real poll, decide and send jobs in a child process against the carrier
emulators and an SMTP sink, kills it one to three times (`os._exit` at a named point in poll,
decide or send, inside the SMTP conversation, or SIGKILL after a random delay), restarts it, and
runs the scenario to its end (see tests/reliability/crashkit.py). It prints one line per trial and a
table: trials, faults injected, messages duplicated (must be 0), events lost (must be 0), due
messages neither sent, held nor in review (must be 0; a message that follows a send of unknown
fate, such as a refund offer's follow-up, waits for staff to settle it and has a row of its own).
Exit status 1 if any trial failed a check.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.crashkit import reference, trial


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=1000, help="first seed")
    args = parser.parse_args(argv)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pw-faults-") as tmp:
        work = Path(tmp)
        ref = reference(work / "reference", args.days)
        print(
            f"reference: {len(ref.facts.message_ids)} messages, {len(ref.facts.events)} events, "
            f"{args.days} simulated days, {ref.seconds:.1f}s",
            flush=True,
        )
        results = []
        for n in range(args.trials):
            seed = args.seed + n
            result = trial(seed, ref, work / f"trial-{seed}", args.days)
            results.append(result)
            mark = "ok  " if result.ok else "FAIL"
            print(
                f"{mark} seed {seed}: kills {result.kills or ['(none fired)']}, "
                f"dup {result.duplicates}, lost {result.lost_events}, "
                f"needs_review {result.needs_review}, {result.seconds:.1f}s"
                + ("" if result.ok else f" {result}"),
                flush=True,
            )
    faults = sum(len(r.kills) for r in results)
    sigkills = sum(1 for r in results for k in r.kills if k.startswith("SIGKILL"))
    table = [
        ("trials", len(results)),
        ("faults injected (process deaths)", faults),
        ("  of which SIGKILL from outside", sigkills),
        ("messages delivered to the SMTP sink", sum(r.delivered for r in results)),
        ("messages duplicated", sum(r.duplicates for r in results)),
        ("events lost", sum(r.lost_events for r in results)),
        ("due messages neither sent, held nor in review", sum(len(r.unsent) for r in results)),
        ("held in needs_review (fate unknown)", sum(r.needs_review for r in results)),
        ("waiting until staff settle such a send", sum(len(r.held) for r in results)),
        ("trials failing a check", sum(1 for r in results if not r.ok)),
        ("runtime (s)", round(time.monotonic() - began, 1)),
    ]
    width = max(len(k) for k, _ in table)
    print()
    for key, value in table:
        print(f"{key:<{width}}  {value:>8}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
