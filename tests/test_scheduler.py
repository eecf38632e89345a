"""Tests for the pure scheduler state machine (jupyter_pipelines.run.scheduler).

Whole states are compared with literals, as dask's ``test_local`` does: each test walks the
machine step by step and checks every field at once.
"""
from __future__ import annotations

import doctest
from collections import deque

import pytest

from jupyter_pipelines.run import scheduler
from jupyter_pipelines.run.scheduler import Plan, State, finish, initial, stop, take


def make_plan(upstream: dict[str, tuple[str, ...]],
              inputs: dict[str, dict[str, tuple[str, ...]]] | None = None) -> Plan:
    """A Plan from ``step -> upstream steps``; downstream is derived in definition order."""
    downstream: dict[str, list[str]] = {name: [] for name in upstream}
    for name, ups in upstream.items():
        for up in ups:
            downstream[up].append(name)
    return Plan(upstream=dict(upstream),
                downstream={k: tuple(v) for k, v in downstream.items()},
                inputs=inputs or {})


def run_all(plan: Plan, state: State, status: str = "Succeeded") -> list[str]:
    """Take and finish every step in FIFO order; return the order steps were started."""
    started = []
    while not state.done:
        name = take(state)
        started.append(name)
        finish(plan, state, name, status)
    return started


# -- happy paths --------------------------------------------------------------------------------


def test_chain() -> None:
    plan = make_plan({"a": (), "b": ("a",), "c": ("b",)},
                     inputs={"b": {"x": ("a",)}, "c": {"y": ("b",)}})
    s = initial(plan)
    assert s == State(waiting={"b": {"a"}, "c": {"b"}}, ready=deque(["a"]), running=set(),
                      finished={}, doomed=set())
    assert not s.done

    assert take(s) == "a"
    assert s == State(waiting={"b": {"a"}, "c": {"b"}}, ready=deque(), running={"a"},
                      finished={}, doomed=set())
    assert not s.done

    assert finish(plan, s, "a", "Succeeded") == []
    assert s == State(waiting={"c": {"b"}}, ready=deque(["b"]), running=set(),
                      finished={"a": "Succeeded"}, doomed=set())

    assert take(s) == "b"
    assert finish(plan, s, "b", "Succeeded") == []
    assert s == State(waiting={}, ready=deque(["c"]), running=set(),
                      finished={"a": "Succeeded", "b": "Succeeded"}, doomed=set())

    assert take(s) == "c"
    assert finish(plan, s, "c", "Succeeded") == []
    assert s == State(waiting={}, ready=deque(), running=set(),
                      finished={"a": "Succeeded", "b": "Succeeded", "c": "Succeeded"},
                      doomed=set())
    assert s.done


def test_diamond() -> None:
    plan = make_plan({"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")},
                     inputs={"b": {"x": ("a",)}, "c": {"x": ("a",)},
                             "d": {"y": ("b",), "z": ("c",)}})
    s = initial(plan)
    assert s == State(waiting={"b": {"a"}, "c": {"a"}, "d": {"b", "c"}}, ready=deque(["a"]),
                      running=set(), finished={}, doomed=set())

    assert take(s) == "a"
    assert finish(plan, s, "a", "Succeeded") == []
    assert s == State(waiting={"d": {"b", "c"}}, ready=deque(["b", "c"]), running=set(),
                      finished={"a": "Succeeded"}, doomed=set())

    assert take(s) == "b"
    assert take(s) == "c"
    assert s == State(waiting={"d": {"b", "c"}}, ready=deque(), running={"b", "c"},
                      finished={"a": "Succeeded"}, doomed=set())

    # c finishes first: d still waits for b
    assert finish(plan, s, "c", "Succeeded") == []
    assert s == State(waiting={"d": {"b"}}, ready=deque(), running={"b"},
                      finished={"a": "Succeeded", "c": "Succeeded"}, doomed=set())
    assert not s.done

    assert finish(plan, s, "b", "Cached") == []
    assert s == State(waiting={}, ready=deque(["d"]), running=set(),
                      finished={"a": "Succeeded", "c": "Succeeded", "b": "Cached"},
                      doomed=set())

    assert take(s) == "d"
    finish(plan, s, "d", "Succeeded")
    assert s.done
    assert s.finished == {"a": "Succeeded", "c": "Succeeded", "b": "Cached", "d": "Succeeded"}


def test_fan_out() -> None:
    plan = make_plan({"a": (), "b": ("a",), "c": ("a",), "d": ("a",)})
    s = initial(plan)
    take(s)
    assert finish(plan, s, "a", "Succeeded") == []
    assert s == State(waiting={}, ready=deque(["b", "c", "d"]), running=set(),
                      finished={"a": "Succeeded"}, doomed=set())
    assert [take(s), take(s), take(s)] == ["b", "c", "d"]
    assert s == State(waiting={}, ready=deque(), running={"b", "c", "d"},
                      finished={"a": "Succeeded"}, doomed=set())
    assert not s.done
    for name in ("d", "b", "c"):
        assert finish(plan, s, name, "Succeeded") == []
    assert s == State(waiting={}, ready=deque(), running=set(),
                      finished={"a": "Succeeded", "d": "Succeeded", "b": "Succeeded",
                                "c": "Succeeded"},
                      doomed=set())
    assert s.done


def test_several_roots_ready_in_definition_order() -> None:
    plan = make_plan({"r1": (), "r2": (), "x": ("r1", "r2"), "r3": ()})
    s = initial(plan)
    assert s == State(waiting={"x": {"r1", "r2"}}, ready=deque(["r1", "r2", "r3"]),
                      running=set(), finished={}, doomed=set())
    assert run_all(plan, s) == ["r1", "r2", "r3", "x"]


# -- failures -----------------------------------------------------------------------------------


def test_failure_stops_downstream_but_independent_branch_runs() -> None:
    plan = make_plan({
        "load": (), "bad": ("load",), "after_bad": ("bad",), "later": ("after_bad",),
        "good": ("load",), "after_good": ("good",),
    })
    s = initial(plan)
    take(s)
    finish(plan, s, "load", "Succeeded")
    assert [take(s), take(s)] == ["bad", "good"]

    assert finish(plan, s, "bad", "Failed") == ["after_bad", "later"]
    assert s == State(waiting={"after_good": {"good"}}, ready=deque(), running={"good"},
                      finished={"load": "Succeeded", "bad": "Failed", "after_bad": "NotRun",
                                "later": "NotRun"},
                      doomed=set())
    assert not s.done

    assert finish(plan, s, "good", "Succeeded") == []
    assert s == State(waiting={}, ready=deque(["after_good"]), running=set(),
                      finished={"load": "Succeeded", "bad": "Failed", "after_bad": "NotRun",
                                "later": "NotRun", "good": "Succeeded"},
                      doomed=set())
    assert take(s) == "after_good"
    finish(plan, s, "after_good", "Succeeded")
    assert s.done


def test_one_failed_upstream_among_succeeded_ones_means_not_run() -> None:
    plan = make_plan({"a": (), "b": (), "c": ("a", "b")})
    s = initial(plan)
    take(s), take(s)
    assert finish(plan, s, "a", "Succeeded") == []
    assert finish(plan, s, "b", "Failed") == ["c"]
    assert s == State(waiting={}, ready=deque(), running=set(),
                      finished={"a": "Succeeded", "b": "Failed", "c": "NotRun"}, doomed=set())
    assert s.done


@pytest.mark.parametrize("status", ["Failed", "Stopped", "NotRun"])
def test_blocking_statuses_propagate_as_not_run(status: str) -> None:
    plan = make_plan({"a": (), "b": ("a",), "c": ("b",)})
    s = initial(plan)
    take(s)
    assert finish(plan, s, "a", status) == ["b", "c"]
    assert s == State(waiting={}, ready=deque(), running=set(),
                      finished={"a": status, "b": "NotRun", "c": "NotRun"}, doomed=set())


def test_failure_wins_over_doom() -> None:
    # a doomed step whose other upstream failed is NotRun (a failure explains it better)
    plan = make_plan({"a": (), "cond": (), "no": ("cond", "a")})
    s = initial(plan)
    take(s), take(s)
    finish(plan, s, "a", "Failed")
    assert finish(plan, s, "cond", "Succeeded", doom=("no",)) == ["no"]
    assert s.finished == {"a": "Failed", "cond": "Succeeded", "no": "NotRun"}


# -- conditions ---------------------------------------------------------------------------------


def condition_plan() -> Plan:
    """a -> cond -> {yes (True), no (False)}; yes -> after_yes; no -> after_no;
    join reads ``r`` which both branches output (rejoin)."""
    return make_plan(
        {
            "a": (), "cond": ("a",), "yes": ("cond",), "no": ("cond",),
            "after_yes": ("yes",), "after_no": ("no",), "join": ("yes", "no"),
        },
        inputs={
            "cond": {"x": ("a",)}, "after_yes": {"p": ("yes",)}, "after_no": {"q": ("no",)},
            "join": {"r": ("yes", "no")},
        },
    )


def test_condition_dooms_the_branch_not_taken_and_branches_rejoin() -> None:
    plan = condition_plan()
    s = initial(plan)
    take(s)
    finish(plan, s, "a", "Succeeded")
    assert take(s) == "cond"

    assert finish(plan, s, "cond", "Succeeded", doom=("no", "after_no")) == ["no", "after_no"]
    assert s == State(
        waiting={"after_yes": {"yes"}, "join": {"yes"}},
        ready=deque(["yes"]),
        running=set(),
        finished={"a": "Succeeded", "cond": "Succeeded", "no": "Skipped", "after_no": "Skipped"},
        doomed={"no", "after_no"},
    )

    assert take(s) == "yes"
    assert finish(plan, s, "yes", "Succeeded") == []
    assert s == State(
        waiting={},
        ready=deque(["after_yes", "join"]),
        running=set(),
        finished={"a": "Succeeded", "cond": "Succeeded", "no": "Skipped", "after_no": "Skipped",
                  "yes": "Succeeded"},
        doomed={"no", "after_no"},
    )
    assert run_all(plan, s) == ["after_yes", "join"]
    assert s.finished["join"] == "Succeeded"


def test_step_downstream_only_of_skipped_branch_is_skipped_without_being_doomed() -> None:
    # only the branch step itself is doomed; its downstream is Skipped because every
    # upstream was Skipped
    plan = condition_plan()
    s = initial(plan)
    take(s)
    finish(plan, s, "a", "Succeeded")
    take(s)
    assert finish(plan, s, "cond", "Succeeded", doom=("yes",)) == ["yes", "after_yes"]
    assert s == State(
        waiting={"after_no": {"no"}, "join": {"no"}},
        ready=deque(["no"]),
        running=set(),
        finished={"a": "Succeeded", "cond": "Succeeded", "yes": "Skipped",
                  "after_yes": "Skipped"},
        doomed={"yes"},
    )
    assert run_all(plan, s) == ["no", "after_no", "join"]
    assert s.finished == {"a": "Succeeded", "cond": "Succeeded", "yes": "Skipped",
                          "after_yes": "Skipped", "no": "Succeeded", "after_no": "Succeeded",
                          "join": "Succeeded"}


def test_data_input_whose_only_producer_was_skipped_is_skipped() -> None:
    # report reads x (from a, Succeeded) and z (only from no, Skipped): Skipped.
    # audit has the same upstream but only an order edge from no: it still runs.
    plan = make_plan(
        {"a": (), "cond": ("a",), "no": ("cond",), "report": ("a", "no"), "audit": ("a", "no")},
        inputs={"cond": {"x": ("a",)}, "report": {"x": ("a",), "z": ("no",)},
                "audit": {"x": ("a",)}},
    )
    s = initial(plan)
    take(s)
    finish(plan, s, "a", "Succeeded")
    take(s)
    assert finish(plan, s, "cond", "Succeeded", doom=("no",)) == ["no", "report"]
    assert s == State(
        waiting={},
        ready=deque(["audit"]),
        running=set(),
        finished={"a": "Succeeded", "cond": "Succeeded", "no": "Skipped", "report": "Skipped"},
        doomed={"no"},
    )


def test_condition_that_failed_means_branches_not_run() -> None:
    plan = condition_plan()
    s = initial(plan)
    take(s)
    finish(plan, s, "a", "Succeeded")
    take(s)
    settled = finish(plan, s, "cond", "Failed")
    assert settled == ["yes", "no", "after_no", "after_yes", "join"]
    # "in order": every settled step comes after the settled steps it depends on
    for i, name in enumerate(settled):
        assert all(up not in settled[i:] for up in plan.upstream[name])
    assert s == State(
        waiting={}, ready=deque(), running=set(),
        finished={"a": "Succeeded", "cond": "Failed", "yes": "NotRun", "after_yes": "NotRun",
                  "join": "NotRun", "no": "NotRun", "after_no": "NotRun"},
        doomed=set(),
    )
    assert s.done


# -- initial() with reused results --------------------------------------------------------------


def test_initial_with_cached_steps_and_doomed_branch() -> None:
    plan = condition_plan()
    s = initial(plan, finished={"a": "Cached", "cond": "Cached"}, doomed={"no", "after_no"})
    assert s == State(
        waiting={"after_yes": {"yes"}, "join": {"yes"}},
        ready=deque(["yes"]),
        running=set(),
        finished={"a": "Cached", "cond": "Cached", "no": "Skipped", "after_no": "Skipped"},
        doomed={"no", "after_no"},
    )
    assert run_all(plan, s) == ["yes", "after_yes", "join"]


def test_initial_settled_steps_come_before_roots_and_failures_propagate() -> None:
    plan = make_plan({"a": (), "b": ("a",), "c": ("b",), "d": (), "e": ("d",)})
    s = initial(plan, finished={"a": "Cached", "d": "Failed"})
    assert s == State(
        waiting={"c": {"b"}},
        ready=deque(["b"]),
        running=set(),
        finished={"a": "Cached", "d": "Failed", "e": "NotRun"},
        doomed=set(),
    )


def test_initial_with_a_finished_step_whose_upstream_is_not_finished() -> None:
    # reusing b alone: a runs again, c may start at once
    plan = make_plan({"a": (), "b": ("a",), "c": ("b",)})
    s = initial(plan, finished={"b": "Cached"})
    assert s == State(waiting={}, ready=deque(["c", "a"]), running=set(),
                      finished={"b": "Cached"}, doomed=set())
    assert run_all(plan, s) == ["c", "a"]
    assert s.finished == {"b": "Cached", "c": "Succeeded", "a": "Succeeded"}


def test_initial_everything_cached_is_done() -> None:
    plan = make_plan({"a": (), "b": ("a",)})
    s = initial(plan, finished={"a": "Cached", "b": "Cached"})
    assert s == State(waiting={}, ready=deque(), running=set(),
                      finished={"a": "Cached", "b": "Cached"}, doomed=set())
    assert s.done


def test_initial_doomed_root_propagates_skip() -> None:
    plan = make_plan({"a": (), "b": ("a",)})
    s = initial(plan, doomed={"a"})
    assert s == State(waiting={}, ready=deque(), running=set(),
                      finished={"a": "Skipped", "b": "Skipped"}, doomed={"a"})


# -- stop, take, done ---------------------------------------------------------------------------


def test_stop_marks_running_stopped_and_the_rest_not_run() -> None:
    plan = make_plan({"a": (), "b": ("a",), "c": ("a",), "d": ("a",), "e": ("b",)})
    s = initial(plan)
    take(s)
    finish(plan, s, "a", "Succeeded")
    assert take(s) == "b"
    assert take(s) == "c"
    assert s == State(waiting={"e": {"b"}}, ready=deque(["d"]), running={"b", "c"},
                      finished={"a": "Succeeded"}, doomed=set())

    assert stop(s) == ["b", "c"]
    assert s == State(
        waiting={}, ready=deque(), running=set(),
        finished={"a": "Succeeded", "b": "Stopped", "c": "Stopped", "d": "NotRun",
                  "e": "NotRun"},
        doomed=set(),
    )
    assert s.done
    assert take(s) is None


def test_stop_returns_running_steps_sorted() -> None:
    plan = make_plan({"z": (), "m": (), "a": ()})
    s = initial(plan)
    take(s), take(s), take(s)
    assert stop(s) == ["a", "m", "z"]
    assert s.finished == {"a": "Stopped", "m": "Stopped", "z": "Stopped"}


def test_stop_before_anything_ran() -> None:
    plan = make_plan({"a": (), "b": ("a",)})
    s = initial(plan)
    assert stop(s) == []
    assert s == State(waiting={}, ready=deque(), running=set(),
                      finished={"a": "NotRun", "b": "NotRun"}, doomed=set())


def test_take_is_first_come_first_served() -> None:
    plan = make_plan({"a": (), "b": (), "c": ("a",), "d": ("b",)})
    s = initial(plan)
    assert take(s) == "a"
    finish(plan, s, "a", "Succeeded")  # c becomes ready after b
    assert s.ready == deque(["b", "c"])
    assert take(s) == "b"
    finish(plan, s, "b", "Succeeded")
    assert s.ready == deque(["c", "d"])
    assert take(s) == "c"
    assert take(s) == "d"
    assert take(s) is None
    assert s.running == {"c", "d"}


def test_take_on_empty_ready_changes_nothing() -> None:
    plan = make_plan({"a": (), "b": ("a",)})
    s = initial(plan)
    take(s)
    before = State(waiting={"b": {"a"}}, ready=deque(), running={"a"}, finished={},
                   doomed=set())
    assert s == before
    assert take(s) is None
    assert s == before


def test_done() -> None:
    assert State(waiting={}, ready=deque(), running=set(), finished={}).done
    assert not State(waiting={}, ready=deque(["a"]), running=set(), finished={}).done
    assert not State(waiting={}, ready=deque(), running={"a"}, finished={}).done
    assert State(waiting={}, ready=deque(), running=set(), finished={"a": "Failed"}).done
    # default doomed is an empty set
    assert State(waiting={}, ready=deque(), running=set(), finished={}).doomed == set()


def test_empty_plan_is_done() -> None:
    s = initial(make_plan({}))
    assert s == State(waiting={}, ready=deque(), running=set(), finished={}, doomed=set())
    assert s.done


def test_final_statuses() -> None:
    assert scheduler.FINAL == ("Succeeded", "Cached", "Failed", "Stopped", "Skipped", "NotRun")


def test_module_doctest() -> None:
    result = doctest.testmod(scheduler)
    assert result.attempted > 0
    assert result.failed == 0
