"""The console's charts (inline SVG, pure) and the trend counts they draw."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import fakeredis
from hypothesis import given
from hypothesis import strategies as st

from bridge.store.redis import RedisStore
from bridge.store.trends import TrendStore
from bridge.trends import (
    BUCKET_S,
    NOTICE_BOUNDS,
    WINDOW_S,
    Tally,
    Trends,
    bucket_of,
    notice_bucket,
    notice_labels,
)
from bridge.ui import charts

SVG = "{http://www.w3.org/2000/svg}"
names = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=12)
counts = st.integers(min_value=0, max_value=10**6)


def parsed(figure: str) -> ET.Element:
    """A chart is well-formed markup (every text escaped), its drawing inside its box."""
    svg = figure.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    root = ET.fromstring(svg)  # noqa: S314 - the bridge's own markup
    assert root.tag == "figure"
    for rect in root.iter(f"{SVG}rect"):
        x, y = float(rect.get("x", 0)), float(rect.get("y", 0))
        w, h = float(rect.get("width", 0)), float(rect.get("height", 0))
        assert w >= 0 and h >= 0
        assert x >= charts.LEFT - 1 and x + w <= charts.W - charts.RIGHT + 1
        assert y >= charts.TOP - 0.1 and y + h <= charts.TOP + charts.PLOT_H + 0.1
    return root


@given(st.lists(counts, min_size=1, max_size=16))
def test_a_histogram_has_a_bar_per_bucket_as_tall_as_its_share(values: list[int]) -> None:
    labels = [f"b{i}" for i in range(len(values))]
    root = parsed(charts.histogram("ttn", labels, values, "nothing"))
    bars = list(root.iter(f"{SVG}rect"))
    assert len(bars) == len(values)
    heights = [float(b.get("height", 0)) for b in bars]
    tallest = max(values)
    for value, height in zip(values, heights, strict=True):
        if tallest and value == tallest:
            assert height >= charts.PLOT_H / 10  # the axis top is at most 10 x the tallest
        if value == 0:
            assert height < 0.01
    assert ("nothing" in ET.tostring(root, encoding="unicode")) == (tallest == 0)


@given(st.dictionaries(names, st.lists(counts, min_size=6, max_size=6), max_size=5))
def test_stacked_bars_add_up_and_escape_their_names(series: dict[str, list[int]]) -> None:
    starts = [i * BUCKET_S for i in range(6)]
    root = parsed(charts.stacked("dlv", starts, series, "none"))
    legend = [s.text or "" for s in root.iter("span") if s.get("class") == "key"]
    keys = "".join(ET.tostring(s, encoding="unicode", method="text") for s in root.iter("span"))
    for name in series:
        assert name in keys  # escaped and back: the text, never markup
    drawn = sum(1 for _ in root.iter(f"{SVG}rect"))
    assert drawn == sum(1 for vs in series.values() for v in vs if v)
    assert len(legend) == len(series)


def test_lines_draw_budget_use_as_percent_with_100_on_the_axis() -> None:
    starts = [i * BUCKET_S for i in range(4)]
    root = parsed(charts.lines("b", starts, {"fs": [0.0, 0.5, 1.0, 0.25]}, "none", percent=True))
    ticks = [t.text for t in root.iter(f"{SVG}text")]
    assert "100%" in ticks and "50%" in ticks
    (line,) = root.iter(f"{SVG}polyline")
    ys = [float(p.split(",")[1]) for p in (line.get("points") or "").split()]
    assert min(ys) == charts.TOP  # 100 % is the top of the plot
    assert max(ys) == charts.TOP + charts.PLOT_H  # 0 % its bottom


def test_a_jobs_progress_marks_every_poll_by_its_reason() -> None:
    steps = [(100.0, 110.0, 10), (120.0, 140.0, 50)]
    polls = [(100.0, "new", "RUNNING"), (120.0, "progress", "RUNNING"), (140.0, "age", "<b>")]
    figure = charts.progress("p", steps, polls, 100)
    root = parsed(figure)
    assert len(list(root.iter(f"{SVG}circle"))) == 3
    text = ET.tostring(root, encoding="unicode", method="text")
    assert "poll: age" in text and "poll: progress" in text and "<b>" in text
    assert "<b>" not in figure  # escaped in the markup
    assert "no polls yet" in charts.progress("p", [], [], None)


def test_notice_buckets_follow_the_metrics_bounds() -> None:
    assert notice_bucket(0) == 0 and notice_bucket(0.5) == 0 and notice_bucket(0.6) == 1
    assert notice_bucket(3600) == len(NOTICE_BOUNDS) - 1
    assert notice_bucket(3601) == len(NOTICE_BOUNDS)
    assert len(notice_labels()) == len(NOTICE_BOUNDS) + 1
    assert notice_labels()[0] == "≤0.5s" and notice_labels()[-1] == ">1h"


def test_a_tally_is_taken_once_and_a_failed_flush_gives_it_back() -> None:
    tally = Tally()
    tally.sent("fs")
    tally.sent("fs")
    tally.delivered("dead")
    tally.noticed(3.0)
    taken = tally.take()
    assert taken == {"sent:fs": 2, "dlv:dead": 1, f"ttn:{notice_bucket(3.0)}": 1}
    assert tally.take() == {}
    tally.give_back(taken)
    tally.sent("fs")
    assert tally.take()["sent:fs"] == 3


def test_budget_use_is_a_share_of_the_rate_for_the_busiest_sources() -> None:
    now = 10 * BUCKET_S + 5
    read = {bucket_of(now): {"sent:a": 300, "sent:b": 30, "sent:c": 3, "sent:free": 9}}
    trends = Trends.of(now, WINDOW_S, read)
    assert len(trends.starts) == WINDOW_S // BUCKET_S and trends.starts[-1] == bucket_of(now)
    use = trends.budget_use({"a": 1.0, "b": 1.0, "c": 1.0}, most=2)
    assert set(use) == {"a", "b"}  # the busiest two; `free` has no rate limit
    assert use["a"][-1] == 1.0 and use["b"][-1] == 0.1 and use["a"][0] == 0


async def test_every_replica_adds_to_the_same_buckets(prefix: str) -> None:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    trends = TrendStore(RedisStore(redis, prefix))
    now = 1_000_000.0
    await trends.add({"sent:fs": 2, "dlv:succeeded": 1}, now)
    await trends.add({"sent:fs": 3}, now + 1)  # another replica, same bucket
    await trends.add({"sent:fs": 7}, now - WINDOW_S)  # out of the window
    await trends.add({}, now)
    read = await trends.read(now, WINDOW_S)
    assert sum(trends_of["sent:fs"] for trends_of in read.counts if trends_of) == 5
    assert read.series("dlv:", ["succeeded"])["succeeded"][-1] == 1
    ttl = await redis.pttl(RedisStore(redis, prefix).keys.trend(bucket_of(now)))
    assert 0 < ttl <= (WINDOW_S + 2 * BUCKET_S) * 1000
