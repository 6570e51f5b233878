"""Housekeeping jobs: when each periodic job last ran, so several sweepers run it once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class HousekeepingRun(Base):
    """One row per periodic job (``name``, e.g. ``retention``): the claim of its latest run.

    Every sweeper (each web worker's scheduler, `flask scheduler run`) asks for the job now and
    then; the one whose conditional UPDATE moves ``last_started_at`` into the current period runs
    it, the others see the row already claimed (app/services/retention.py). ``last_finished_at``
    stays behind ``last_started_at`` while a run is under way or when one broke off.
    """

    __tablename__ = "housekeeping_run"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_started_at: Mapped[datetime | None]
    last_started_by: Mapped[str | None] = mapped_column(String(128))
    last_finished_at: Mapped[datetime | None]
