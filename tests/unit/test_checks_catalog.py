"""The table of checks: one entry per check name and kind of target, nothing missing."""

from __future__ import annotations

from collections import Counter

from installer.checks.catalog import CHECKS, LIVE_CHECK_NAMES, checks_for
from installer.names import CHECK_NAMES, TARGETS


def test_every_check_name_has_an_entry_and_no_target_has_two_of_one_name() -> None:
    assert {check.name for check in CHECKS} == set(CHECK_NAMES)
    for target in TARGETS:
        names = Counter(check.name for check in CHECKS if target in check.targets)
        assert max(names.values()) == 1, (target, names)


def test_the_table_is_in_report_order() -> None:
    for target in TARGETS:
        names = list(checks_for(target))
        assert names == [n for n in CHECK_NAMES if n in names]


def test_which_checks_each_kind_of_target_uses() -> None:
    assert set(checks_for("kubernetes")) == {
        "cpu",
        "memory",
        "architecture",
        "dns",
        "kubernetes",
        *LIVE_CHECK_NAMES,
    }
    assert set(checks_for("enterprise")) == set(checks_for("kubernetes"))
    assert set(checks_for("development")) == set(CHECK_NAMES) - {"kubernetes", "ldap"}
    assert set(checks_for("production")) == set(checks_for("development"))
