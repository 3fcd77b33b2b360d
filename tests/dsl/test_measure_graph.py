"""Measures reading measures: the checker finds every cycle, and gives an
acyclic policy the levels the engine evaluates it in (checked on generated graphs)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dsl.checker import check
from dsl.parser import parse


def _policy(edges: dict[int, set[int]], via_let: set[int]) -> str:
    out = []
    for m, deps in edges.items():
        reads = " + ".join(f"(measures.m{d} ?? 0)" for d in sorted(deps)) or "1"
        if m in via_let:
            out.append(f"let reads_{m} = {reads}\n")
            reads = f"reads_{m}"
        out.append(f"measure m{m} {{\n  key account.id\n  sum {reads}\n  window 1h\n}}\n")
    return "\n".join(out)


def _cyclic(edges: dict[int, set[int]]) -> bool:
    state: dict[int, int] = {}

    def visit(n: int) -> bool:
        state[n] = 1
        for d in edges[n]:
            if state.get(d) == 1 or (d not in state and visit(d)):
                return True
        state[n] = 2
        return False

    return any(n not in state and visit(n) for n in edges)


graphs = st.integers(1, 6).flatmap(
    lambda n: st.tuples(
        st.fixed_dictionaries({i: st.sets(st.integers(0, n - 1), max_size=3) for i in range(n)}),
        st.sets(st.integers(0, n - 1)),
    )
)


@settings(max_examples=200, deadline=None)
@given(graphs)
def test_cycles_are_errors_and_levels_follow_the_reads(graph: tuple[dict[int, set[int]], set[int]]) -> None:
    edges, via_let = graph
    module, diags = parse(_policy(edges, via_let), "g.policy")
    assert not diags
    checked, cdiags = check([module])
    cycles = [d for d in cdiags if d.code == "E0215"]
    assert [d for d in cdiags if d.is_error and d.code != "E0215"] == []
    assert bool(cycles) == _cyclic(edges)
    for d in cycles:
        assert " read" in d.message and d.hint is not None and "g.policy:" in d.hint
    if not cycles:
        level = checked.measure_levels
        for m, deps in edges.items():
            assert level[f"m{m}"] == 1 + max((level[f"m{d}"] for d in deps), default=-1)
            assert set(checked.measure_reads[f"m{m}"]) == {f"m{d}" for d in deps}
