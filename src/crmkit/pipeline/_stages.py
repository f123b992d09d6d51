"""Stages and pipelines: the ordered steps a deal goes through."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from typing import Any

import attrs

from crmkit.errors import ValidationError
from crmkit.records import OpportunityStatus

__all__ = ["DEFAULT_PIPELINE", "ForecastCategory", "Pipeline", "Stage"]


class ForecastCategory(enum.StrEnum):
    """How a stage counts in a forecast.

    ``commit`` deals are expected to close, ``best_case`` might, ``pipeline`` is early,
    ``closed`` is revenue already won and ``omitted`` is left out (lost deals).
    """

    PIPELINE = "pipeline"
    BEST_CASE = "best_case"
    COMMIT = "commit"
    CLOSED = "closed"
    OMITTED = "omitted"


def _check_name(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("Stage", "name", value, "must be non-empty text")


def _check_probability(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValidationError(
            "Stage", "probability", value, "must be a number from 0 to 1", record_id=inst.name
        )


def _check_rotting(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValidationError(
            "Stage",
            "rotting_days",
            value,
            "must be a positive number of days or None",
            record_id=inst.name,
        )


@attrs.frozen(kw_only=True)
class Stage:
    """One step of a :class:`Pipeline`.

    ``probability`` is the default win probability of a deal in this stage; ``outcome``
    is ``won`` or ``lost`` for the end stages and ``open`` otherwise; a deal that sits in
    the stage longer than ``rotting_days`` without a stage change is *rotting*.

    Examples
    --------
    >>> Stage(name="demo", probability=0.3, rotting_days=14).category
    <ForecastCategory.PIPELINE: 'pipeline'>
    """

    name: str = attrs.field(validator=_check_name)
    probability: float = attrs.field(converter=float, validator=_check_probability)
    category: ForecastCategory = attrs.field(
        default=ForecastCategory.PIPELINE, converter=ForecastCategory
    )
    outcome: OpportunityStatus = attrs.field(
        default=OpportunityStatus.OPEN, converter=OpportunityStatus
    )
    rotting_days: float | None = attrs.field(default=None, validator=_check_rotting)

    @property
    def is_open(self) -> bool:
        """True unless this is a won or lost end stage."""
        return self.outcome is OpportunityStatus.OPEN


def _stages(value: Iterable[Stage]) -> tuple[Stage, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class Pipeline:
    """Ordered stages: the open stages in order, then the won and lost end stages.

    ``forward_only`` refuses moves back to an earlier open stage.

    Examples
    --------
    >>> p = Pipeline(stages=[
    ...     Stage(name="talk", probability=0.2),
    ...     Stage(name="won", probability=1, outcome="won", category="closed"),
    ...     Stage(name="lost", probability=0, outcome="lost", category="omitted"),
    ... ])
    >>> p.names
    ('talk', 'won', 'lost')
    >>> p.won_stage.name, p.lost_stage.name
    ('won', 'lost')
    >>> p.stage("talkk")
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: Pipeline 'default' field 'stage' = 'talkk': unknown stage; ...
    """

    stages: tuple[Stage, ...] = attrs.field(converter=_stages)
    name: str = "default"
    forward_only: bool = False

    def __attrs_post_init__(self) -> None:
        names = [s.name for s in self.stages if isinstance(s, Stage)]
        if len(names) != len(self.stages):
            raise ValidationError(
                "Pipeline", "stages", self.stages, "must all be Stage values", record_id=self.name
            )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValidationError(
                "Pipeline", "stages", duplicates, "stage names must be unique", record_id=self.name
            )
        outcomes = [s.outcome for s in self.stages]
        for needed in OpportunityStatus:
            if needed not in outcomes:
                raise ValidationError(
                    "Pipeline",
                    "stages",
                    names,
                    f"needs at least one {needed.value} stage",
                    record_id=self.name,
                )

    @property
    def names(self) -> tuple[str, ...]:
        """Stage names in order."""
        return tuple(s.name for s in self.stages)

    @property
    def open_stages(self) -> tuple[Stage, ...]:
        """The stages a deal can be open in, in order."""
        return tuple(s for s in self.stages if s.is_open)

    @property
    def won_stage(self) -> Stage:
        """The (first) stage that closes a deal as won."""
        return next(s for s in self.stages if s.outcome is OpportunityStatus.WON)

    @property
    def lost_stage(self) -> Stage:
        """The (first) stage that closes a deal as lost."""
        return next(s for s in self.stages if s.outcome is OpportunityStatus.LOST)

    def index(self, name: str) -> int:
        """Position of a stage (unknown names raise :class:`ValidationError`)."""
        for position, stage in enumerate(self.stages):
            if stage.name == name:
                return position
        raise ValidationError(
            "Pipeline",
            "stage",
            name,
            f"unknown stage; known stages: {', '.join(self.names)}",
            record_id=self.name,
        )

    def stage(self, name: str) -> Stage:
        """The stage called ``name`` (unknown names raise :class:`ValidationError`)."""
        return self.stages[self.index(name)]


DEFAULT_PIPELINE = Pipeline(
    name="default",
    stages=(
        Stage(name="prospecting", probability=0.1, rotting_days=30),
        Stage(name="qualification", probability=0.25, rotting_days=30),
        Stage(name="proposal", probability=0.5, category="best_case", rotting_days=21),
        Stage(name="negotiation", probability=0.8, category="commit", rotting_days=14),
        Stage(name="closed_won", probability=1.0, category="closed", outcome="won"),
        Stage(name="closed_lost", probability=0.0, category="omitted", outcome="lost"),
    ),
)
"""prospecting (10 %) -> qualification (25 %) -> proposal (50 %, best case) ->
negotiation (80 %, commit) -> closed_won / closed_lost. Moves backwards are allowed."""
