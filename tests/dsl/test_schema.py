"""The field table: consistent in itself, and written out (proto, docs) as it stands."""

from __future__ import annotations

from collections import Counter

import pytest

from dsl.functions import FUNCTIONS
from dsl.schema import BY_PATH, FIELDS, SCHEMA, SECTIONS
from dsl.schema_render import REGIONS, ROOT
from dsl.types import IP


@pytest.mark.parametrize("region", REGIONS, ids=lambda r: f"{r.path}:{r.name}")
def test_generated_regions_are_up_to_date(region) -> None:  # type: ignore[no-untyped-def]
    text = (ROOT / region.path).read_text(encoding="utf-8")
    assert region.apply(text) == text, f"{region.path} is out of date: run scripts/gen_fields (and scripts/gen_protos)"


def test_fields_are_unique_and_numbered_once_per_message() -> None:
    assert len(BY_PATH) == len(FIELDS)
    sections = {s.name for s in SECTIONS}
    assert {f.section for f in FIELDS} == sections, "every section has fields, every field a known section"
    numbers = Counter((f.section, f.number) for f in FIELDS)
    assert [k for k, n in numbers.items() if n > 1] == []
    assert all(f.number > 0 for f in FIELDS)
    assert list(SCHEMA) == [s.name for s in SECTIONS]
    assert all(SCHEMA[f.section][f.name] == f.type for f in FIELDS)


def test_gateway_names_are_unambiguous() -> None:
    for names in (
        [f.header_setting for f in FIELDS],
        [f.header for f in FIELDS],
        [f.claim for f in FIELDS],
        [d for f in FIELDS for d in f.descriptors],
    ):
        counts = Counter(n for n in names if n is not None)
        assert [n for n, c in counts.items() if c > 1] == []
    assert all(f.header is None or f.header == f.header.lower() for f in FIELDS), "header names are lower-case"


def test_derived_fields_name_a_signal_of_an_address_of_their_type() -> None:
    derived = [f for f in FIELDS if f.derived is not None]
    assert {f.path for f in derived} == {"client.country", "client.asn"}
    for f in derived:
        func = FUNCTIONS[f.derived]
        assert func.params == (IP,) and func.returns == f.type, f.path


def test_region_markers_are_required() -> None:
    with pytest.raises(ValueError, match="no region"):
        REGIONS[0].apply("message Request {}\n")
