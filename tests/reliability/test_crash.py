"""Crash consistency: the jobs killed at seeded points and restarted never send twice or lose data.

Each trial is a real process death (`os._exit` at a kill point, or SIGKILL from outside) of a child
running the real jobs; see `tests.reliability.crashkit`. `bench/faults.py` runs more seeds (1000-1049 by default).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.crashkit import Reference, reference, trial

# The fault bench's own days and a slice of its seeds, 1011 among them (a refund offer's send
# killed after the channel returned, then its follow-up): a change that breaks a crash promise
# fails CI, not a later bench run.
DAYS = 14
SEEDS = range(1005, 1017)


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return reference(tmp_path_factory.mktemp("reference"), DAYS)


def test_the_uninterrupted_run_sends_and_stores_something(ref: Reference) -> None:
    assert len(ref.facts.message_ids) >= 10 and ref.facts.duplicates == 0
    assert len(ref.facts.events) >= 30
    assert ref.counts["send:smtp.accepted"] == len(ref.facts.message_ids)


@pytest.mark.parametrize("seed", SEEDS)
def test_killed_and_restarted_nothing_twice_nothing_lost(
    seed: int, ref: Reference, tmp_path: Path
) -> None:
    result = trial(seed, ref, tmp_path, DAYS)
    assert result.ok, result


def test_the_seeds_kill_for_real_in_every_job(ref: Reference, tmp_path: Path) -> None:
    from tests.reliability.crashkit import plan_kills

    planned = [k for seed in SEEDS for k in plan_kills(seed, ref)]
    where = {str(k.get("point", "sigkill")).split(":")[0] for k in planned}
    assert {"poll", "send", "sigkill"} <= where
