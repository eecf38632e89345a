"""Tests for the pure DAG builder (jupyter_pipelines.graph)."""
from __future__ import annotations

import pytest

from jupyter_pipelines.errors import (
    CycleError,
    DuplicateOutputError,
    GraphError,
    UnknownReferenceError,
)
from jupyter_pipelines.graph import Edge, build
from jupyter_pipelines.parameters import Parameter
from jupyter_pipelines.steps import make_step


def graph_of(*steps, params=(), context_names=frozenset(), unknown_names=None):
    return build({s.name: s for s in steps},
                 {name: Parameter(name, default) for name, default in dict(params).items()},
                 context_names, unknown_names)


def S(name, code, kind="processing", **kw):
    return make_step(name, code, kind, **kw)


def cond(name, expr, if_steps=(), else_steps=()):
    return make_step(name, expr, "condition", if_steps=list(if_steps), else_steps=list(else_steps))


# -- edges --------------------------------------------------------------------------------------


def test_inputs_inferred_from_reads() -> None:
    g = graph_of(S("a", "x = 1"), S("b", "y = x * 2"), S("c", "z = y + x"))
    assert g.edges == [
        Edge("a", "b", "x", "data"),
        Edge("b", "c", "y", "data"),
        Edge("a", "c", "x", "data"),
    ]
    assert g.inputs == {"a": {}, "b": {"x": ("a",)}, "c": {"y": ("b",), "x": ("a",)}}
    assert g.upstream == {"a": (), "b": ("a",), "c": ("b", "a")}
    assert g.downstream == {"a": ("b", "c"), "b": ("c",), "c": ()}
    assert g.params == {"a": (), "b": (), "c": ()}
    assert g.order == ["a", "b", "c"]
    assert g.missing_branches == {}


def test_parameters_are_read_without_edges() -> None:
    g = graph_of(S("a", "x = n_rows * 2"), S("b", "y = x + threshold + n_rows"),
                 params={"n_rows": 10, "threshold": 0.5})
    # (the order of reads is covered in test_source.py)
    assert {k: set(v) for k, v in g.params.items()} == {"a": {"n_rows"}, "b": {"threshold", "n_rows"}}
    assert g.inputs == {"a": {}, "b": {"x": ("a",)}}
    assert g.edges == [Edge("a", "b", "x", "data")]


def test_output_named_like_a_parameter_is_rejected() -> None:
    with pytest.raises(DuplicateOutputError, match=r"Step `a` outputs `x`, which is also a parameter"):
        graph_of(S("a", "x = 1"), params={"x": 2})


def test_explicit_inputs_and_outputs() -> None:
    # explicit inputs replace the inferred reads; explicit outputs replace the writes
    g = graph_of(
        S("a", "x = 1\nw = 2"),
        S("b", "y = 3"),
        S("c", "q = x + y + w\nr = 0", inputs=["x", "y"], outputs=["q"]),
    )
    assert g.steps["c"].reads == ("x", "y")
    assert g.steps["c"].outputs == ("q",)
    assert g.inputs["c"] == {"x": ("a",), "y": ("b",)}
    assert g.upstream["c"] == ("a", "b")


def test_depends_on_makes_order_edges() -> None:
    g = graph_of(S("a", "x = 1"), S("b", "y = 2"), S("c", "z = 3", depends_on=["a", "b"]))
    assert g.edges == [Edge("a", "c", None, "order"), Edge("b", "c", None, "order")]
    assert g.inputs["c"] == {}
    assert g.upstream["c"] == ("a", "b")
    assert g.downstream == {"a": ("c",), "b": ("c",), "c": ()}


def test_data_and_order_edge_to_the_same_step_count_once_upstream() -> None:
    g = graph_of(S("a", "x = 1"), S("b", "y = x", depends_on=["a"]))
    assert g.edges == [Edge("a", "b", "x", "data"), Edge("a", "b", None, "order")]
    assert g.upstream == {"a": (), "b": ("a",)}
    assert g.downstream == {"a": ("b",), "b": ()}
    assert g.order == ["a", "b"]


def test_unknown_depends_on_step_suggests_close_name() -> None:
    with pytest.raises(UnknownReferenceError) as info:
        graph_of(S("prepare", "x = 1"), S("train", "y = 2", depends_on=["prepar"]))
    message = str(info.value)
    assert "Step `train` refers to step `prepar`, which does not exist." in message
    assert "Did you mean `prepare`?" in message


def test_unknown_depends_on_without_close_name_has_no_suggestion() -> None:
    with pytest.raises(UnknownReferenceError) as info:
        graph_of(S("prepare", "x = 1"), S("train", "y = 2", depends_on=["zzz"]))
    assert "Did you mean" not in str(info.value)


# -- cycles -------------------------------------------------------------------------------------


def test_two_cycle_message_has_the_path() -> None:
    with pytest.raises(CycleError) as info:
        graph_of(S("a", "x = y"), S("b", "y = x"))
    assert info.value.path == ["a", "b", "a"]
    assert "The steps form a cycle: a -> b -> a." in str(info.value)
    assert isinstance(info.value, GraphError)


def test_three_cycle_message_has_the_path_in_data_flow_direction() -> None:
    # a feeds b (x), b feeds c (y), c feeds a (z)
    with pytest.raises(CycleError) as info:
        graph_of(S("a", "x = z"), S("b", "y = x"), S("c", "z = y"))
    assert info.value.path == ["a", "b", "c", "a"]
    assert "a -> b -> c -> a" in str(info.value)


def test_cycle_path_leaves_out_steps_downstream_of_the_cycle() -> None:
    with pytest.raises(CycleError) as info:
        graph_of(S("d", "q = x"), S("a", "x = z"), S("b", "y = x"), S("c", "z = y"),
                 S("root", "w = 1"))
    assert info.value.path == ["a", "b", "c", "a"]


def test_cycle_through_depends_on() -> None:
    with pytest.raises(CycleError) as info:
        graph_of(S("a", "x = 1", depends_on=["b"]), S("b", "y = x"))
    assert info.value.path == ["a", "b", "a"]


def test_self_cycle() -> None:
    with pytest.raises(CycleError) as info:
        graph_of(S("a", "x = 1", depends_on=["a"]))
    assert "a -> a" in str(info.value)


# -- duplicate outputs and branch rejoin --------------------------------------------------------


def test_duplicate_output_names_both_steps() -> None:
    with pytest.raises(DuplicateOutputError) as info:
        graph_of(S("first", "x = 1"), S("second", "x = 2"))
    message = str(info.value)
    assert "Steps `first` and `second` both output `x`." in message
    assert "`_x`" in message


def branch_steps():
    return (
        S("a", "x = 2"),
        cond("check", "x > 1", if_steps=["yes"], else_steps=["no"]),
        S("yes", "r = x"),
        S("no", "r = -x"),
        S("join", "s = r"),
    )


def test_duplicate_output_allowed_on_opposite_branches_rejoin() -> None:
    g = graph_of(*branch_steps())
    assert g.inputs["join"] == {"r": ("yes", "no")}
    assert g.upstream["join"] == ("yes", "no")
    assert Edge("check", "yes", "True", "branch") in g.edges
    assert Edge("check", "no", "False", "branch") in g.edges
    assert [e for e in g.edges if e.target == "join"] == [
        Edge("yes", "join", "r", "data"), Edge("no", "join", "r", "data"),
    ]
    assert g.upstream["yes"] == ("check", "a")
    assert g.order == ["a", "check", "yes", "no", "join"]
    assert g.missing_branches == {}


def test_duplicate_output_on_the_same_branch_is_rejected() -> None:
    with pytest.raises(DuplicateOutputError, match="Steps `yes` and `also` both output `r`"):
        graph_of(
            S("a", "x = 2"),
            cond("check", "x > 1", if_steps=["yes", "also"], else_steps=["no"]),
            S("yes", "r = x"), S("also", "r = 2 * x"), S("no", "k = 0"),
        )


def test_duplicate_output_across_branches_of_different_conditions_is_rejected() -> None:
    with pytest.raises(DuplicateOutputError, match="both output `r`"):
        graph_of(
            S("a", "x = 2"),
            cond("c1", "x > 1", if_steps=["yes1"], else_steps=["no1"]),
            cond("c2", "x > 5", if_steps=["yes2"], else_steps=["no2"]),
            S("yes1", "r = x"), S("no1", "k1 = 0"), S("yes2", "k2 = 0"), S("no2", "r = -x"),
        )


def test_duplicate_output_between_branch_step_and_outside_step_is_rejected() -> None:
    with pytest.raises(DuplicateOutputError, match="both output `r`"):
        graph_of(*branch_steps(), S("other", "r = 5"))


def test_missing_branch_steps_are_recorded() -> None:
    g = graph_of(S("a", "x = 2"),
                 cond("check", "x > 1", if_steps=["yes", "maybe"], else_steps=["no"]),
                 S("yes", "r = x"))
    assert g.missing_branches == {"check": ["maybe", "no"]}
    assert [e for e in g.edges if e.kind == "branch"] == [Edge("check", "yes", "True", "branch")]
    assert g.downstream["check"] == ("yes",)


# -- unknown names ------------------------------------------------------------------------------


def test_unknown_input_suggests_close_matches() -> None:
    with pytest.raises(UnknownReferenceError) as info:
        graph_of(S("a", "train_df = 1"), S("b", "y = train_dff"), params={"train_size": 3})
    message = str(info.value)
    assert message.startswith("Step `b` reads `train_dff`, which is not a parameter")
    assert "Did you mean `train_df` or `train_size`?" in message


def test_unknown_input_without_close_match() -> None:
    with pytest.raises(UnknownReferenceError) as info:
        graph_of(S("a", "train_df = 1"), S("b", "y = qqq"))
    assert "Step `b` reads `qqq`" in str(info.value)
    assert "Did you mean" not in str(info.value)


def test_unknown_names_are_collected_when_asked() -> None:
    unknown: dict[str, list[str]] = {}
    g = graph_of(S("a", "x = 1"), S("b", "y = x + ghost"), S("c", "z = spook + y"),
                 unknown_names=unknown)
    assert unknown == {"b": ["ghost"], "c": ["spook"]}
    assert g.inputs == {"a": {}, "b": {"x": ("a",)}, "c": {"y": ("b",)}}


def test_builtins_and_context_names_are_not_inputs() -> None:
    g = graph_of(
        S("a", "x = 1"),
        S("b", "y = np.array(helper(x))"),
        S("c", "z = 1", inputs=["len", "print", "x", "np"]),  # explicit reads of builtins
        context_names=frozenset({"np", "helper"}),
    )
    assert set(g.steps["b"].reads) == {"np", "helper", "x"}
    assert g.inputs["b"] == {"x": ("a",)}
    assert g.inputs["c"] == {"x": ("a",)}
    assert g.params == {"a": (), "b": (), "c": ()}


def test_context_name_not_given_is_unknown() -> None:
    with pytest.raises(UnknownReferenceError, match="Step `b` reads `np`"):
        graph_of(S("a", "x = 1"), S("b", "y = np.array(x)"))


# -- transform --model --------------------------------------------------------------------------


def test_transform_model_must_be_a_create_model_step() -> None:
    with pytest.raises(UnknownReferenceError) as info:
        graph_of(S("prep", "model = 1\nx = 2"),
                 S("t", "", "transform", model="prep", data="x"))
    message = str(info.value)
    assert "Step `t` names `prep` as its model (--model), but `prep` is a processing step." in message
    assert "create-model" in message


def test_transform_model_step_must_exist() -> None:
    with pytest.raises(UnknownReferenceError, match="Step `t` refers to step `mdl`.*Did you mean `mdl1`"):
        graph_of(S("d", "x = 1"), S("est", "estimator = 1"),
                 S("mdl1", "", "create-model", model="estimator"),
                 S("t", "", "transform", model="mdl", data="x"))


def test_transform_reads_the_create_model_output() -> None:
    g = graph_of(
        S("fit", "est = 1"),
        S("m", "", "create-model", model="est"),
        S("d", "x = 1"),
        S("t", "", "transform", model="m", data="x"),
    )
    assert g.inputs["m"] == {"est": ("fit",)}
    assert g.inputs["t"] == {"x": ("d",), "model_entity": ("m",)}
    assert Edge("m", "t", "model_entity", "data") in g.edges
    assert g.upstream["t"] == ("d", "m")
    assert g.order == ["fit", "m", "d", "t"]  # earliest-defined ready step first


# -- order and ancestors ------------------------------------------------------------------------


def test_topological_order_keeps_independent_steps_in_definition_order() -> None:
    g = graph_of(S("c", "z = 1"), S("a", "x = 1"), S("b", "y = 1"))
    assert g.order == ["c", "a", "b"]


def test_topological_order_puts_upstream_defined_later_first() -> None:
    g = graph_of(S("consumer", "y = x"), S("producer", "x = 1"), S("other", "w = 2"))
    assert g.order == ["producer", "consumer", "other"]


def test_topological_order_keeps_a_valid_definition_order() -> None:
    g = graph_of(S("a", "x = 1"), S("b", "y = x"), S("c", "z = y"), S("d", "k = 0"))
    assert g.order == ["a", "b", "c", "d"]


def test_ancestors() -> None:
    g = graph_of(
        S("a", "x = 1"), S("b", "y = x"), S("c", "z = y"), S("d", "k = 0"),
        S("e", "m = k + z"), S("f", "n = 1", depends_on=["d"]),
    )
    assert g.ancestors(["c"]) == {"a", "b"}
    assert g.ancestors(["e"]) == {"a", "b", "c", "d"}
    assert g.ancestors(["f"]) == {"d"}
    assert g.ancestors(["a"]) == set()
    assert g.ancestors(["c", "f"]) == {"a", "b", "d"}
    assert g.ancestors([]) == set()


def test_ancestors_include_conditions_of_branch_steps() -> None:
    g = graph_of(*branch_steps())
    assert g.ancestors(["join"]) == {"a", "check", "yes", "no"}
    assert g.ancestors(["no"]) == {"a", "check"}
