"""A notice words the ISO 8601 durations a diagram prints in its reader's language
(app.languages.duration_words, through render_text's ``word``), as the task pages do."""

from __future__ import annotations

import pytest

from app.languages import duration_amounts, duration_words
from app.services.instructions import render_text


@pytest.mark.parametrize(("text", "en", "zh"), [
    ("P5D", "5 days", "5 天"),
    ("P1DT2H", "1 day 2 hours", "1 天 2 小时"),
    ("PT48H", "48 hours", "48 小时"),  # as its author wrote it, not turned into days
    ("P1Y2M3W", "1 year 2 months 3 weeks", "1 年 2 个月 3 周"),
    ("PT1M1.5S", "1 minute 1.5 seconds", "1 分钟 1.5 秒"),
    ("PT0S", "0 minutes", "0 分钟"),
])
def test_a_duration_in_each_language(text, en, zh):
    assert (duration_words(text, "en"), duration_words(text, "zh_CN")) == (en, zh)


@pytest.mark.parametrize("text", ["P", "5 days", "P5", "PT", "XP5D", "2026-05-01", ""])
def test_what_is_not_a_duration_is_not_worded(text):
    assert duration_amounts(text) is None and duration_words(text, "zh_CN") is None


def test_only_a_whole_printed_value_is_worded_and_the_data_compares_as_stored():
    template = ("{{ title }}: closes after {{ delay }}{% if delay == 'P5D' %} (the usual){% endif %};"
                " see P5D in the handbook")
    data = {"title": "Laptop P5D", "delay": "P5D"}
    words = render_text(template, data, word=lambda value: duration_words(value, "zh_CN"))
    assert words == "Laptop P5D: closes after 5 天 (the usual); see P5D in the handbook"
    assert render_text(template, data) == "Laptop P5D: closes after P5D (the usual); see P5D in the handbook"
