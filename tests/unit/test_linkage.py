"""Linking referrals by blind index: repeat and serial perpetrators, the same referral from two sources."""

from __future__ import annotations

from datetime import date

import pytest

from rules.linkage import LinkRow, link, name_dob_key

D = date(2026, 11, 10)


def row(
    rid: int,
    source: str,
    victim: str | None,
    perp: set[str],
    day: int = 10,
    case_id: int | None = None,
    case_open: bool = True,
) -> LinkRow:
    return LinkRow(rid, source, f"{source}:{rid}", date(2026, 11, day), victim, frozenset(perp), case_id, case_open)


def test_unlinked_referrals_have_no_history() -> None:
    out = link(
        [row(1, "police_rms", "v1", {"name_dob:p1"}), row(2, "police_rms", "v2", {"name_dob:p2"})],
        [],
        duplicate_window_days=14,
    )
    assert {k: (v.duplicate_of, v.earlier_cases, v.other_victims) for k, v in out.items()} == {
        1: (None, 0, 0),
        2: (None, 0, 0),
    }


def test_the_same_perpetrator_against_another_victim_is_serial() -> None:
    existing = [row(1, "police_rms", "v1", {"name_dob:p"}, day=1, case_id=100)]
    out = link([row(2, "nhs_trust", "v2", {"name_dob:p"})], existing, duplicate_window_days=14)
    assert (out[2].duplicate_of, out[2].earlier_cases, out[2].other_victims) == (None, 1, 1)
    assert out[2].earlier_referral_ids == (1,)  # whose case the serial finding raises too


def test_a_perpetrator_written_another_way_by_another_system_is_still_serial() -> None:
    # The key stands in for its blind index: equal keys give equal indexes.
    earlier, later = name_dob_key("Sean", "O Brien", D), name_dob_key("Seán", "O\u02bcBrien", D)
    existing = [row(1, "police_rms", "v1", {f"name_dob:{earlier}"}, day=1, case_id=100)]
    out = link([row(2, "nhs_trust", "v2", {f"name_dob:{later}"})], existing, duplicate_window_days=14)
    assert (out[2].earlier_cases, out[2].other_victims) == (1, 1)


def test_a_pnc_match_links_even_when_the_name_is_spelt_differently() -> None:
    existing = [row(1, "police_rms", "v1", {"name_dob:a", "pnc:x"}, day=1, case_id=100)]
    out = link([row(2, "police_rms", "v1", {"name_dob:b", "pnc:x"})], existing, duplicate_window_days=14)
    assert (out[2].earlier_cases, out[2].other_victims) == (1, 0)


def test_the_same_referral_from_another_source_within_the_window_joins_its_case() -> None:
    existing = [row(1, "police_rms", "v1", {"name_dob:p"}, day=5, case_id=100)]
    new = [
        row(2, "victim_service", "v1", {"name_dob:p"}, day=10),
        row(3, "victim_service", "v1", {"name_dob:p"}, day=25),
    ]
    out = link(new, existing, duplicate_window_days=14)
    assert out[2].duplicate_of == 1 and out[2].earlier_cases == 0  # the case it joins is not "earlier"
    assert out[3].duplicate_of is None  # 20 days later: a new referral, a repeat
    assert out[3].earlier_cases == 1 and out[3].other_victims == 0


def test_same_source_or_closed_case_is_never_a_duplicate() -> None:
    existing = [
        row(1, "police_rms", "v1", {"name_dob:p"}, day=9, case_id=100),
        row(2, "nhs_trust", "v1", {"name_dob:q"}, day=9, case_id=101, case_open=False),
    ]
    new = [row(3, "police_rms", "v1", {"name_dob:p"}), row(4, "victim_service", "v1", {"name_dob:q"})]
    out = link(new, existing, duplicate_window_days=14)
    assert out[3].duplicate_of is None and out[4].duplicate_of is None


def test_two_sources_on_the_same_night_make_one_case_whatever_the_input_order() -> None:
    a, b = row(5, "police_rms", "v1", {"name_dob:p"}), row(6, "nhs_trust", "v1", {"name_dob:p"})
    for new in ([a, b], [b, a]):
        out = link(new, [], duplicate_window_days=14)
        assert sorted((k, v.duplicate_of) for k, v in out.items()) == [(5, 6), (6, None)]  # nhs_trust sorts first


def test_missing_victim_identity_never_merges() -> None:
    existing = [row(1, "police_rms", None, {"name_dob:p"}, case_id=100)]
    out = link([row(2, "nhs_trust", None, {"name_dob:p"})], existing, duplicate_window_days=14)
    assert out[2].duplicate_of is None and (out[2].earlier_cases, out[2].other_victims) == (1, 0)


def test_a_stranger_referred_by_two_sources_is_one_referral_but_two_known_stalkers_are_not() -> None:
    existing = [
        row(1, "police_rms", "v1", set(), day=9, case_id=100),  # perpetrator unknown to police
        row(2, "police_rms", "v2", {"name_dob:a"}, day=9, case_id=101),
    ]
    new = [row(3, "victim_service", "v1", {"name_dob:z"}), row(4, "victim_service", "v2", {"name_dob:b"})]
    out = link(new, existing, duplicate_window_days=14)
    assert out[3].duplicate_of == 1  # one side cannot say who it was: the same referral
    assert out[4].duplicate_of is None  # both know, and they differ: two stalkers, two cases


def test_a_later_source_that_cannot_say_who_it_was_joins_the_earlier_ones_case() -> None:
    existing = [row(1, "police_rms", "v1", {"name_dob:p"}, day=1, case_id=100)]
    out = link([row(2, "victim_service", "v1", set(), day=3)], existing, duplicate_window_days=14)
    assert out[2].duplicate_of == 1


def test_the_duplicate_window_counts_its_last_day_in() -> None:
    existing = [row(1, "police_rms", "v1", {"name_dob:p"}, day=1, case_id=100)]
    for day, joins in ((15, 1), (16, None)):  # 14 days apart: within the window; 15: a repeat
        out = link([row(2, "victim_service", "v1", {"name_dob:p"}, day=day)], existing, duplicate_window_days=14)
        assert out[2].duplicate_of == joins, day


@pytest.mark.parametrize(
    ("signals", "name_dob", "pnc", "keys"),
    [
        (("name_dob", "pnc"), "n1", "p1", {"name_dob:n1", "pnc:p1"}),
        (("pnc",), "n1", "p1", {"pnc:p1"}),
        (("name_dob",), "n1", "p1", {"name_dob:n1"}),
        (("name_dob", "pnc"), None, "p1", {"pnc:p1"}),
        (("name_dob", "pnc"), "n1", None, {"name_dob:n1"}),
        ((), "n1", "p1", set()),
    ],
)
def test_a_perpetrator_is_linked_only_by_the_policys_signals(
    signals: tuple[str, ...], name_dob: str | None, pnc: str | None, keys: set[str]
) -> None:
    from types import SimpleNamespace

    from iasu.policy import load_policy
    from tasks.route import _link_rows

    policy = load_policy(None)
    policy = policy.model_copy(update={"linkage": policy.linkage.model_copy(update={"signals": signals})})
    stored = SimpleNamespace(
        id=1,
        source="police_rms",
        source_ref="CH-URN-2026-000001",
        received_date=D,
        victim_index="v1",
        perp_name_dob=name_dob,
        perp_pnc=pnc,
        case_id=None,
    )
    [linked] = _link_rows([stored], policy)
    assert linked.perp_keys == frozenset(keys)
