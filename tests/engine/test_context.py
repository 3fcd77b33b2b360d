"""The request context: the fast JSON path agrees with the pydantic models,
errors name the JSON path, and the checker's schema matches the models."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dsl.schema import SCHEMA
from policy_engine.context import FIELDS, Context, RequestContext, describe_validation_error


def test_schema_and_models_agree() -> None:
    for section, fields in SCHEMA.items():
        model = RequestContext.model_fields[section].annotation
        model = next(a for a in getattr(model, "__args__", (model,)) if a is not type(None))
        assert set(model.model_fields) == set(fields), section


sections = st.fixed_dictionaries(
    {},
    optional={
        "request": st.fixed_dictionaries(
            {},
            optional={
                "id": st.text(max_size=5),
                "ts": st.floats(0, 2e9),
                "prompt": st.text(max_size=30),
                "max_tokens": st.integers(-3, 5000),
                "prompt_tokens": st.integers(0, 100),
            },
        ),
        "account": st.fixed_dictionaries(
            {},
            optional={
                "id": st.text(max_size=5),
                "age_days": st.one_of(st.floats(-1, 100), st.none()),
                "verification": st.sampled_from(["none", "email", "phone", "kyc", "bogus"]),
                "labels": st.lists(st.text(max_size=3), max_size=3),
                "tier": st.integers(0, 3),
            },
        ),
        "client": st.fixed_dictionaries(
            {},
            optional={
                "ip": st.sampled_from(["203.0.113.9", "2001:db8::1"]),
                "asn": st.one_of(st.integers(-1, 70000), st.text(max_size=3)),
            },
        ),
        "usage": st.one_of(st.none(), st.fixed_dictionaries({"completion_tokens": st.integers(0, 10)})),
        "extra": st.just(1),
    },
)


@settings(max_examples=300, deadline=None)
@given(sections)
def test_fast_path_matches_models(doc: dict) -> None:
    text = json.dumps(doc)
    try:
        expected = Context.from_model(RequestContext.model_validate_json(text))
    except ValidationError as e:
        with pytest.raises(ValidationError) as fast_err:
            Context.from_json(text)
        assert {tuple(x["loc"]) for x in e.errors()} == {tuple(x["loc"]) for x in fast_err.value.errors()}
        return
    got = Context.from_json(text)
    for f in FIELDS:
        assert getattr(got, f) == getattr(expected, f), f


def test_errors_name_the_json_path() -> None:
    with pytest.raises(ValidationError) as e:
        Context.from_json('{"account": {"verification": "gold"}, "request": {"colour": 1}}')
    msg = describe_validation_error(e.value)
    assert "$.account.verification" in msg and "$.request.colour: unknown field" in msg
