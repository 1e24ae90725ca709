"""The benchmark's freshness-rule prediction and the replay's age rewrite (bench/workload.py)."""

from __future__ import annotations

import copy
import datetime
import itertools
import re
from collections import Counter
from typing import Any

import pytest

from bench import run, workload
from bench.workload import View
from leads import freshness
from leads.lead import Moment

MIN, MAX = 300, 3600
LONG_AGO = -10 * 86400.0  # unchanged for ten days when the hour began
ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
START = datetime.datetime(2024, 3, 14, 12, 0, tzinfo=datetime.UTC).timestamp()


def views(lead_id: str, *moments: float) -> list[View]:
    return [View(at=at, lead_id=lead_id) for at in moments]


def calls(schedule: list[View], updated_at: dict[str, float | None], **rule: float) -> int:
    return workload.calls_by_freshness_rule(
        schedule,
        updated_at=updated_at,
        min_ttl=rule.get("min_ttl", MIN),
        max_ttl=rule.get("max_ttl", MAX),
        fraction=rule.get("fraction", freshness.HEURISTIC_FRACTION),
    )


# --- the window ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("updated_at", "fetched_at", "window"),
    [
        (LONG_AGO, 0, MAX),  # unchanged for days: the maximum
        (-36_000, 0, MAX),  # unchanged for exactly 10 h: 0.1 x 36,000 s = the maximum
        (-10, 0, MIN),  # changed seconds ago: the minimum
        (-3000, 0, MIN),  # 0.1 x 3,000 s = 300 s: still the minimum
        (-4000, 0, 400),  # in between: a tenth of its age
        (-4000, 1000, 500),  # a later fetch: the lead is older, the window longer
        (600, 0, MIN),  # updatedAt after the fetch (a clock ahead): the minimum
        (None, 0, MIN),  # no usable updatedAt: the minimum
    ],
)
def test_window_follows_the_products_rule(
    updated_at: float | None, fetched_at: float, window: float
) -> None:
    assert workload.freshness_window(
        fetched_at=fetched_at, updated_at=updated_at, min_ttl=MIN, max_ttl=MAX
    ) == pytest.approx(window)


def test_window_is_zero_when_the_minimum_is_zero() -> None:
    assert workload.freshness_window(fetched_at=0, updated_at=LONG_AGO, min_ttl=0, max_ttl=MAX) == 0


def test_a_maximum_below_the_minimum_means_the_minimum() -> None:
    window = workload.freshness_window(fetched_at=0, updated_at=LONG_AGO, min_ttl=MIN, max_ttl=60)
    assert window == MIN


def test_window_is_the_one_leads_freshness_computes() -> None:
    """The restated rule and Resource.fresh_for_copy agree on a grid of cases."""
    fetched = 1_700_000_000.0
    ages: list[float | None] = [None, -600, 0, 10, 2999, 3000, 3001, 4000, 35_999, 36_000, 1e6]
    for age, (min_ttl, max_ttl) in itertools.product(
        ages, [(0, 3600), (300, 3600), (300, 300), (300, 60), (60, 7200)]
    ):
        modified = None if age is None else fetched - age
        resource = freshness.Resource(
            name="lead_x",
            fetch=lambda client: {},
            fresh_for=min_ttl,
            last_modified=lambda data: data["modified"],
            max_fresh_for=max_ttl,
        )
        expected = resource.fresh_for_copy(({"modified": modified}, fetched))
        assert workload.freshness_window(
            fetched_at=fetched, updated_at=modified, min_ttl=min_ttl, max_ttl=max_ttl
        ) == pytest.approx(expected), (age, min_ttl, max_ttl)


@pytest.mark.parametrize(
    ("window", "kind"), [(MAX, "maximum"), (MIN, "minimum"), (400, "between"), (0, "minimum")]
)
def test_window_kind(window: float, kind: str) -> None:
    assert workload.window_kind(window, min_ttl=MIN, max_ttl=MAX) == kind


# --- calls on tiny schedules ----------------------------------------------------------


def test_a_lead_unchanged_for_long_gets_the_maximum_window() -> None:
    schedule = views("lead_a", 0, 100, 3599)
    assert calls(schedule, {"lead_a": LONG_AGO}) == 1  # one copy serves the whole hour
    assert calls([*schedule, View(3600, "lead_a")], {"lead_a": LONG_AGO}) == 2  # 3600 s old


def test_a_lead_changed_just_before_the_hour_gets_the_minimum_window() -> None:
    # Copy at 0 (age 10 s: 300 s), hit at 299, copy at 300 (age 310 s: 300 s), copy at 650.
    assert calls(views("lead_a", 0, 299, 300, 650), {"lead_a": -10}) == 3


def test_each_copy_gets_the_window_of_its_own_fetch_time() -> None:
    # Age 4,000 s at 0: 400 s; the copy at 400 (age 4,400 s) is fresh for 440 s.
    fetches = workload.fetches_by_freshness_rule(
        views("lead_a", 0, 399, 400, 839, 840),
        updated_at={"lead_a": -4000},
        min_ttl=MIN,
        max_ttl=MAX,
    )
    assert [(f.at, f.window) for f in fetches] == [
        (0, pytest.approx(400)),
        (400, pytest.approx(440)),
        (840, pytest.approx(484)),
    ]


def test_an_updated_at_in_the_future_gets_the_minimum_window() -> None:
    assert calls(views("lead_a", 0, 299, 300), {"lead_a": 1000}) == 2


def test_a_lead_without_updated_at_gets_the_minimum_window() -> None:
    schedule = views("lead_a", 0, 299, 300)
    assert calls(schedule, {"lead_a": None}) == 2
    assert calls(schedule, {}) == 2


def test_a_zero_minimum_makes_every_view_a_call() -> None:
    schedule = views("lead_a", 0, 0, 1, 2) + views("lead_b", 5)
    assert calls(schedule, {"lead_a": LONG_AGO, "lead_b": -10}, min_ttl=0) == 5


def test_a_maximum_equal_to_the_minimum_is_the_old_flat_rule() -> None:
    schedule = views("lead_a", 0, 299, 300, 599, 600)
    assert calls(schedule, {"lead_a": LONG_AGO}, max_ttl=MIN) == 3


def test_the_fraction_is_a_parameter() -> None:
    # Half of 1,000 s: fresh for 500 s, so the view at 499 is a hit and 500 a call.
    assert calls(views("lead_a", 0, 499, 500), {"lead_a": -1000}, fraction=0.5) == 2


def test_leads_are_counted_apart() -> None:
    schedule = sorted(
        views("lead_a", 0, 1000, 2000) + views("lead_b", 10, 320),
        key=lambda view: view.at,
    )
    assert calls(schedule, {"lead_a": LONG_AGO, "lead_b": -10}) == 1 + 2


# --- the replay's ages ----------------------------------------------------------------


def lead(lead_id: str, updated_at: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"id": lead_id, "name": "A", "metadata": {"k": ["v"]}}
    if updated_at is not None:
        found["updatedAt"] = updated_at
    return found


def test_simulated_updated_at_is_relative_to_the_start() -> None:
    found = workload.simulated_updated_at(
        [
            lead("lead_a", "2024-03-13T12:00:00.000Z"),
            lead("lead_b", "2024-03-14T12:10:00"),  # no offset: UTC, as the site reads it
            lead("lead_c", None),
            lead("lead_d", "yesterday"),
            lead("lead_e", 1_700_000_000),  # a number: the site does not guess
        ],
        start=START,
    )
    assert found == {
        "lead_a": -86400,
        "lead_b": 600,
        "lead_c": None,
        "lead_d": None,
        "lead_e": None,
    }


@pytest.mark.parametrize(
    ("updated_at", "scaled"),
    [
        ("2024-03-13T12:00:00.000Z", "2024-03-14T11:36:00.000Z"),  # a day: 24 minutes
        ("2024-03-14T11:00:00.000Z", "2024-03-14T11:59:00.000Z"),  # an hour: a minute
        ("2024-03-14T11:59:53.000Z", "2024-03-14T11:59:59.883Z"),  # 7 s: 116.7 ms, in ms
        ("2024-03-14T13:00:00+01:00", "2024-03-14T12:00:00.000Z"),  # an offset: UTC, 0 s old
        ("2024-03-14T12:10:00.000Z", "2024-03-14T12:00:10.000Z"),  # the future stays ahead
    ],
)
def test_with_scaled_ages_scales_each_age(updated_at: str, scaled: str) -> None:
    [rewritten] = workload.with_scaled_ages([lead("lead_a", updated_at)], start=START, scale=1 / 60)
    assert rewritten["updatedAt"] == scaled
    assert ISO_MS_Z.fullmatch(rewritten["updatedAt"])


def test_with_scaled_ages_changes_only_updated_at_and_is_pure() -> None:
    leads = [
        lead("lead_a", "2024-03-13T12:00:00.000Z"),
        lead("lead_b", None),
        lead("lead_c", "not a date"),
    ]
    before = copy.deepcopy(leads)
    rewritten = workload.with_scaled_ages(leads, start=START, scale=1 / 60)
    assert leads == before
    assert rewritten[1:] == before[1:]
    assert {**rewritten[0], "updatedAt": None} == {**before[0], "updatedAt": None}
    rewritten[0]["metadata"]["k"].append("w")
    assert leads == before  # deep copies


def test_scaled_ages_are_the_simulated_ones_times_the_scale() -> None:
    """What the site reads back from the rewritten data is the simulated age, scaled."""
    scale = 60 / workload.SIMULATED_SECONDS
    leads = run.bench_leads()[:60]
    simulated = workload.simulated_updated_at(leads, start=START)
    rewritten = workload.with_scaled_ages(leads, start=START, scale=scale)
    for original, new in zip(leads, rewritten, strict=True):
        moment = Moment.parse(new["updatedAt"])
        assert moment is not None and moment.value is not None
        age = simulated[original["id"]]
        assert age is not None
        assert moment.value.timestamp() - START == pytest.approx(age * scale, abs=0.001)


# --- bench/run.py -------------------------------------------------------------------


@pytest.mark.parametrize("seconds", ["0", "30", "-12"])
def test_replay_seconds_must_scale_both_windows_to_whole_seconds(
    seconds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        run.main(["--replay-seconds", seconds])
    assert "a multiple of 12" in capsys.readouterr().err


def test_render_shows_the_rule_and_its_windows() -> None:
    work = run.WorkloadResult(
        views=1500,
        leads=300,
        distinct_leads=250,
        replay_seconds=60,
        scaled_ttl=5,
        scaled_max_ttl=60,
        site_calls=260,
        site_statuses=Counter({200: 1500}),
        site_first_calls=250,
        site_refetches=10,
        seed_calls=1500,
        seed_statuses=Counter({200: 1500}),
        rule_calls=258,
        rule_refetches=8,
        rule_window_leads=Counter({"maximum": 240, "minimum": 10}),
        rule_window_copies=Counter({"maximum": 240, "minimum": 18}),
        viewed_ages=[-60.0, 1800.0, 40_000.0, 90_000.0],
        what_if={300: 700, 900: 400, 1800: 300, 3600: 258, 7200: 255},
    )
    text = run.render(
        info={},
        setup=[],
        cells=[],
        sandbox_alone={},
        latency_ms=20,
        work=work,
        memories=[],
        weights=[],
        targets=[],
        profiles=[],
    )
    assert "POLLYBOT_CACHE_MAX_TTL=60 s" in text
    assert "| the maximum, 3600 s (unchanged for 10 h or more) | 240 | 240 |" in text
    assert "| in between | 0 | 0 |" in text
    assert "| 300 s (the old flat 300 s rule) | 700 |" in text
    assert "| 3600 s (the product's default) | 258 |" in text
    assert "(250 first views and 8 re-fetches;" in text
    assert "1 viewed leads have an updatedAt after the hour began" in text
    assert "30 min (the youngest) to 25 h (the oldest), 11.1 h at the median" in text


# --- cases measured in turns (bench/run.py) -------------------------------------------


def a_slice(p50: float, *, requests: int = 100, p99: float | None = None) -> Any:
    from bench import wrk

    return wrk.WrkResult(
        requests=requests,
        seconds=2.0,
        rps=requests / 2.0,
        p50_ms=p50,
        p75_ms=p50,
        p90_ms=p50,
        p99_ms=p99 if p99 is not None else p50 * 2,
        socket_errors={"connect": 0, "read": 1, "write": 0, "timeout": 0},
        non_2xx_3xx=1,
    )


def test_slices_combine_into_sums_and_median_percentiles() -> None:
    result = run.combined([a_slice(2.0, requests=100), a_slice(9.0, requests=50), a_slice(3.0)])
    assert result.requests == 250
    assert result.seconds == 6.0
    assert result.rps == pytest.approx(250 / 6.0)
    assert result.p50_ms == 3.0  # the median slice: one slow round does not move it
    assert result.p99_ms == 6.0
    assert result.socket_errors["read"] == 3
    assert result.non_2xx_3xx == 3


def a_cell(case: str, p50s: list[float]) -> run.Cell:
    slices = tuple(a_slice(p) for p in p50s)
    return run.Cell(
        case=case,
        concurrency=1,
        result=run.combined(list(slices)),
        upstream_calls=0,
        statuses=Counter({"200": 100}),
        slices=slices,
    )


def test_the_p50_ratio_pairs_the_rounds() -> None:
    # The machine slows down 2x in the third round: both cases measured in it slow
    # down together, and the ratio holds.
    floor = a_cell("floor", [2.0, 2.0, 4.0, 2.0, 2.0])
    warm = a_cell("warm", [2.8, 2.8, 5.6, 2.8, 2.8])
    assert run.paired_p50_ratio(warm, floor) == pytest.approx(1.4)
    # One round where the page was slow on its own: the median of the ratios ignores it.
    spiked = a_cell("warm", [2.8, 9.0, 2.8, 2.8, 2.8])
    assert run.paired_p50_ratio(spiked, a_cell("floor", [2.0] * 5)) == pytest.approx(1.4)


def test_cells_not_measured_in_turns_compare_their_p50s() -> None:
    floor = a_cell("floor", [2.0, 2.0, 2.0])
    single = a_slice(6.0)
    miss = run.Cell(
        case="miss",
        concurrency=1,
        result=single,
        upstream_calls=100,
        statuses=Counter({"200": 100}),
    )
    assert run.paired_p50_ratio(miss, floor) == 3.0
