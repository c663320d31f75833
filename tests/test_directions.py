import pytest

from gpo_local.algorithm.directions import get_selector, importance, recency, relevance
from gpo_local.core import TrajectoryEntry as E
from gpo_local.errors import ConfigError

TRAJ = [E("p0", 0.3, -1), E("p1", 0.5, 0), E("p2", 0.4, 1), E("p3", 0.2, 2)]


def prompts(entries):
    return [e.prompt for e in entries]


def test_recency_newest_first_and_k_zero_means_none():
    assert prompts(recency(TRAJ, 3)) == ["p3", "p2", "p1"]
    assert prompts(recency(TRAJ, 10)) == ["p3", "p2", "p1", "p0"]
    assert recency(TRAJ, 0) == []


def test_relevance_current_first_then_most_similar():
    sims = [0.9, 0.1, 0.5, 1.0]
    assert prompts(relevance(TRAJ, 3, sims)) == ["p3", "p0", "p2"]
    assert prompts(relevance(TRAJ, 1, sims)) == ["p3"]
    assert prompts(relevance(TRAJ[:1], 3, [1.0])) == ["p0"]  # step 0: only p0


def test_relevance_ties_go_to_newer_and_duplicates_are_skipped():
    traj = [E("a", 0.1, -1), E("b", 0.2, 0), E("a", 0.3, 1), E("c", 0.4, 2)]
    assert prompts(relevance(traj, 3, [0.5, 0.5, 0.5, 1.0])) == ["c", "a", "b"]


def test_importance_best_scores_may_leave_out_current():
    assert prompts(importance(TRAJ, 2)) == ["p1", "p2"]


def test_selector_registry_accepts_original_spelling():
    assert get_selector("relavance") is relevance
    with pytest.raises(ConfigError, match="unknown selection 'nearest'"):
        get_selector("nearest")
