"""Deployed definition files and process definition versions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk, str64, str128, str255, timestamp


class Deployment(Base):
    """One accepted deploy: who, when, which files."""

    __tablename__ = "deployment"

    id: Mapped[intpk]
    deployed_at: Mapped[timestamp]
    deployed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    files: Mapped[list[Any]]
    versions_created: Mapped[list[Any]]


class DefinitionFile(Base):
    """The current content of each deployed file, by name: the set new deploys are merged into."""

    __tablename__ = "definition_file"

    id: Mapped[intpk]
    name: Mapped[str128] = mapped_column(unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str64]
    updated_at: Mapped[timestamp]
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id"))


class ProcessDefinition(Base):
    """One version of one process. Immutable once written; instances point at it."""

    __tablename__ = "process_definition"
    __table_args__ = (UniqueConstraint("process_id", "version"),)

    id: Mapped[intpk]
    process_id: Mapped[str128] = mapped_column(index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str255]
    content_hash: Mapped[str64]
    filename: Mapped[str128]
    # Tens of kB each and immutable: loaded only when read (a step reads the parsed spec from the
    # engine's cache, keyed by spec_key, and needs neither).
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)
    spec_json: Mapped[str] = mapped_column(Text, deferred=True)
    forms: Mapped[dict[str, Any]]
    user_tasks: Mapped[list[Any]]
    lanes: Mapped[list[Any]]
    files_used: Mapped[list[Any]]
    record_mapping: Mapped[dict[str, Any] | None]
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id"))
    deployed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    deployed_at: Mapped[timestamp]
    is_latest: Mapped[bool] = mapped_column(default=True, index=True)

    @property
    def spec_key(self) -> str:
        return f"{self.id}:{self.content_hash}"
