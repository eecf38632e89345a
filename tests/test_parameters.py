"""Tests for pipeline parameters (jupyter_pipelines.parameters)."""
from __future__ import annotations

import pytest

from jupyter_pipelines import Pipeline
from jupyter_pipelines.errors import DefinitionError, NameRuleError, ParameterError
from jupyter_pipelines.parameters import (
    Parameter,
    check_name,
    parse_assignments,
    parse_parameters_cell,
    resolve,
)

# -- types --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("default", "type_name"),
    [(3, "Integer"), (-1, "Integer"), (0.5, "Float"), (True, "Boolean"), (False, "Boolean"),
     ("abc", "String"), ("", "String")],
)
def test_type_is_inferred_from_the_default(default, type_name: str) -> None:
    assert Parameter("p", default).type == type_name


@pytest.mark.parametrize("default", [None, [1], {"a": 1}, (1,), 1j, b"x"])
def test_default_of_another_type_is_rejected(default) -> None:
    with pytest.raises(ParameterError) as info:
        Parameter("p", default)
    message = str(info.value)
    assert "Parameter `p`" in message
    assert type(default).__name__ in message
    assert isinstance(info.value, DefinitionError)


# -- overrides ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("default", "given", "expected"),
    [
        (3, "7", 7), (3, " -2 ", -2), (3, 11, 11),
        (1.5, "2.25", 2.25), (1.5, "3", 3.0), (1.5, 3, 3.0), (1.5, 0.1, 0.1), (1.5, "1e-3", 0.001),
        ("x", "hello", "hello"), ("x", " spaced ", " spaced "), ("x", "", ""), ("x", "3", "3"),
        (False, "true", True), (False, "True", True), (False, "TRUE", True), (False, "1", True),
        (False, "yes", True), (False, "on", True), (False, " true ", True),
        (True, "false", False), (True, "False", False), (True, "0", False), (True, "no", False),
        (True, "off", False), (True, False, False), (False, True, True),
    ],
)
def test_override_parsing(default, given, expected) -> None:
    result = Parameter("p", default).parse(given)
    assert result == expected
    assert type(result) is type(default)


def test_float_accepts_ints_as_floats() -> None:
    p = Parameter("rate", 0.5)
    assert p.parse(2) == 2.0 and type(p.parse(2)) is float
    assert p.parse("2") == 2.0 and type(p.parse("2")) is float


@pytest.mark.parametrize(
    ("default", "given", "type_name"),
    [
        (3, "7.5", "Integer"), (3, "seven", "Integer"), (3, "", "Integer"), (3, 7.0, "Integer"),
        (3, True, "Integer"), (1.5, "abc", "Float"), (1.5, True, "Float"), (1.5, None, "Float"),
        (False, "maybe", "Boolean"), (False, "2", "Boolean"), (False, 1, "Boolean"),
        (False, "", "Boolean"), ("x", 3, "String"), ("x", None, "String"),
    ],
)
def test_bad_override_message_names_parameter_type_and_value(default, given, type_name) -> None:
    with pytest.raises(ParameterError) as info:
        Parameter("my_param", default).parse(given)
    message = str(info.value)
    assert "Parameter `my_param`" in message
    assert type_name in message
    assert f"value given was {given!r}" in message
    assert f"default {default!r}" in message


@pytest.mark.parametrize(
    ("type_name", "hint"),
    [(3, "whole number"), (1.5, "a number"), (True, "true or false")],
)
def test_bad_override_message_has_a_hint(type_name, hint: str) -> None:
    with pytest.raises(ParameterError, match=hint):
        Parameter("p", type_name).parse("nonsense")


def test_enum_values() -> None:
    p = Parameter("mode", "fast", enum_values=["fast", "slow"])
    assert p.enum_values == ("fast", "slow")  # stored as a tuple
    assert p.parse("slow") == "slow"
    with pytest.raises(ParameterError) as info:
        p.parse("medium")
    assert "Parameter `mode` got 'medium'" in str(info.value)
    assert "['fast', 'slow']" in str(info.value)


def test_enum_values_check_the_default() -> None:
    with pytest.raises(ParameterError, match=r"Parameter `mode` got 'other'"):
        Parameter("mode", "other", enum_values=("fast", "slow"))


def test_enum_values_check_parsed_numbers() -> None:
    p = Parameter("k", 1, enum_values=[1, 2, 3])
    assert p.parse("3") == 3
    with pytest.raises(ParameterError, match="not one of its allowed values"):
        p.parse("4")


def test_resolve_applies_overrides_to_defaults() -> None:
    params = {"lr": Parameter("lr", 0.1), "epochs": Parameter("epochs", 5),
              "name": Parameter("name", "run")}
    assert resolve(params, None) == {"lr": 0.1, "epochs": 5, "name": "run"}
    assert resolve(params, {}) == {"lr": 0.1, "epochs": 5, "name": "run"}
    assert resolve(params, {"lr": "0.2", "epochs": 7}) == {"lr": 0.2, "epochs": 7, "name": "run"}


def test_resolve_unknown_parameter_suggests_close_name() -> None:
    params = {"learning_rate": Parameter("learning_rate", 0.1), "epochs": Parameter("epochs", 5)}
    with pytest.raises(ParameterError) as info:
        resolve(params, {"learning_rat": "0.2"})
    message = str(info.value)
    assert message.startswith("Unknown parameter `learning_rat`.")
    assert "Did you mean `learning_rate`?" in message
    assert "`learning_rate`, `epochs`" in message


def test_resolve_unknown_parameter_without_parameters() -> None:
    with pytest.raises(ParameterError) as info:
        resolve({}, {"x": "1"})
    assert "Did you mean" not in str(info.value)
    assert "parameters are: none" in str(info.value)


def test_resolve_bad_value_raises() -> None:
    with pytest.raises(ParameterError, match="Parameter `epochs`"):
        resolve({"epochs": Parameter("epochs", 5)}, {"epochs": "many"})


# -- the parameters cell ------------------------------------------------------------------------


def test_parse_parameters_cell() -> None:
    code = (
        "# thresholds\n"
        "mse_threshold = 6.0\n"
        "n_rows = 100\n"
        "\n"
        "label = 'rings'\n"
        "use_gpu = False\n"
        "offset = -3\n"
    )
    assert parse_parameters_cell(code) == [
        Parameter("mse_threshold", 6.0), Parameter("n_rows", 100), Parameter("label", "rings"),
        Parameter("use_gpu", False), Parameter("offset", -3),
    ]
    assert parse_parameters_cell("") == []


def test_parameters_cell_non_literal_default_names_the_line() -> None:
    with pytest.raises(ParameterError) as info:
        parse_parameters_cell("a = 1\nb = compute(a)")
    message = str(info.value)
    assert "Parameter `b` on line 2" in message
    assert "`compute(a)`" in message
    assert "not a literal" in message


def test_parameters_cell_non_assignment_names_the_line() -> None:
    for code, line, text in [
        ("a = 1\nprint(a)", 2, "print(a)"),
        ("a = b = 1", 1, "a = b = 1"),
        ("a = 1\nx.y = 2", 2, "x.y = 2"),
        ("a: int = 1", 1, "a: int = 1"),
        ("a = 1\nb = 2\nb += 1", 3, "b += 1"),
        ("a, b = 1, 2", 1, "a, b = 1, 2"),
    ]:
        with pytest.raises(ParameterError) as info:
            parse_parameters_cell(code)
        message = str(info.value)
        assert f"Line {line} of the parameters cell, `{text}`, is not a plain assignment" in message


def test_parameters_cell_syntax_error_names_the_line() -> None:
    with pytest.raises(ParameterError) as info:
        parse_parameters_cell("a = 1\nb = = 2")
    message = str(info.value)
    assert "not valid Python" in message
    assert "line 2" in message


def test_parameters_cell_default_of_wrong_type_names_the_parameter() -> None:
    with pytest.raises(ParameterError, match="Parameter `a` has default \\[1\\] of type list"):
        parse_parameters_cell("a = [1]")


def test_parameters_cell_unhashable_literal_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError, match="line 1"):
        parse_parameters_cell("a = {[]: 1}")


def test_parameters_cell_bad_name() -> None:
    with pytest.raises(NameRuleError):
        parse_parameters_cell("a = 1\n" + "b" * 65 + " = 2")


# -- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "step-1", "Train_Model", "0abc", "x" * 64, "-", "_"])
def test_check_name_accepts_sagemaker_names(name: str) -> None:
    assert check_name(name, "Step") == name


@pytest.mark.parametrize("name", ["", "x" * 65, "bad name", "a.b", "a/b", "ünï", "tab\t", 3, None])
def test_check_name_rejects(name) -> None:
    with pytest.raises(NameRuleError) as info:
        check_name(name, "Step")
    message = str(info.value)
    assert message.startswith(f"Step name {name!r} is not allowed")
    assert "^[A-Za-z0-9_-]{1,64}$" in message
    assert isinstance(info.value, DefinitionError)


def test_check_name_rejects_trailing_newline() -> None:
    with pytest.raises(NameRuleError):
        check_name("abc\n", "Step")


@pytest.mark.parametrize("name", ["my-param", "1abc", "-"])
def test_parameter_name_must_also_be_an_identifier(name: str) -> None:
    with pytest.raises(NameRuleError, match="Python identifier"):
        Pipeline().add_parameter(name, 1)


def test_parameter_name_must_follow_the_sagemaker_rule() -> None:
    with pytest.raises(NameRuleError, match="Parameter name"):
        Parameter("a" * 65, 1)
    with pytest.raises(NameRuleError, match="Parameter name"):
        Parameter("", 1)


# -- --param NAME=VALUE -------------------------------------------------------------------------


def test_parse_assignments() -> None:
    assert parse_assignments(None) == {}
    assert parse_assignments([]) == {}
    assert parse_assignments(["a=1", " b =x=y", "c=", "a=2"]) == {"a": "2", "b": "x=y", "c": ""}


@pytest.mark.parametrize("item", ["a", "=1", " =1", ""])
def test_parse_assignments_rejects_malformed(item: str) -> None:
    with pytest.raises(ParameterError) as info:
        parse_assignments([item])
    assert f"--param {item!r} is not of the form NAME=VALUE" in str(info.value)


def test_parse_assignments_then_resolve() -> None:
    params = {"threshold": Parameter("threshold", 6.0), "fast": Parameter("fast", False)}
    values = resolve(params, parse_assignments(["threshold=3", "fast=yes"]))
    assert values == {"threshold": 3.0, "fast": True}
