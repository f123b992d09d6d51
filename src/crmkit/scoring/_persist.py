"""Models to JSON-able data and back, through crmkit's codec converter."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import attrs
import cattrs
import numpy as np

from crmkit.codec import make_converter
from crmkit.errors import ValidationError
from crmkit.scoring._fit import FitModel, PointsRule, RuleGroup
from crmkit.scoring._models import (
    FeatureEncoder,
    LogisticLeadScorer,
    LogisticRegression,
    NaiveBayesLeadScorer,
)

_ESTIMATORS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (FeatureEncoder, LogisticRegression, LogisticLeadScorer, NaiveBayesLeadScorer)
}
_RECORDS: dict[str, type[Any]] = {cls.__name__: cls for cls in (FitModel, PointsRule, RuleGroup)}


@attrs.frozen(kw_only=True)
class ModelState:
    """A model as data: its type, constructor parameters and learned attributes."""

    type: str
    params: Mapping[str, Any]
    learned: Mapping[str, Any]


@cache
def _converter() -> cattrs.Converter:
    converter = make_converter()  # crmkit's own converter: hooks go on this instance only
    classes: tuple[type[Any], ...] = (ModelState, *_RECORDS.values())
    for cls in classes:
        attrs.resolve_types(cls)
    return converter


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if hasattr(type(value), "_learned_names"):
        return {"__model__": attrs.asdict(_state(value))}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=value["dtype"])
        if "__model__" in value:
            return _restore(_converter().structure(value["__model__"], ModelState))
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _state(model: Any) -> ModelState:
    learned = {
        name: _encode(getattr(model, name))
        for name in model._learned_names
        if hasattr(model, name)
    }
    params = {
        k: _encode(list(v) if isinstance(v, tuple) else v) for k, v in model.get_params().items()
    }
    return ModelState(type=type(model).__name__, params=params, learned=learned)


def _restore(state: ModelState) -> Any:
    cls = _ESTIMATORS.get(state.type)
    if cls is None:
        raise ValidationError(
            "ModelState", "type", state.type, f"use one of {sorted(_ESTIMATORS)}"
        )
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in state.params.items()}
    model = cls(**params)
    for name, value in state.learned.items():
        if name not in cls._learned_names:
            raise ValidationError("ModelState", "learned", name, f"is not learned by {state.type}")
        setattr(model, name, _decode(value))
    return model


def model_to_dict(model: Any) -> dict[str, Any]:
    """A fitted (or unfitted) model, or a :class:`FitModel`, as JSON-able data.

    >>> from crmkit import F
    >>> fit = FitModel(rules=(PointsRule(name="US", criteria=F.country == "US", points=10),))
    >>> model_from_dict(model_to_dict(fit)) == fit
    True
    """
    if type(model).__name__ in _RECORDS:
        return {"record": type(model).__name__, "data": _converter().unstructure(model)}
    if type(model).__name__ not in _ESTIMATORS:
        raise ValidationError(
            "model_to_dict", None, type(model).__name__, "is not a crmkit scoring model"
        )
    data: dict[str, Any] = _converter().unstructure(_state(model))
    return {"model": data}


def model_from_dict(data: Mapping[str, Any]) -> Any:
    """The model :func:`model_to_dict` wrote.

    Examples
    --------
    >>> model_from_dict({"record": "RuleGroup", "data": {"name": "size", "cap": 40.0}})
    RuleGroup(name='size', cap=40.0, floor=None)
    """
    try:
        if "record" in data:
            kind = _RECORDS[data["record"]]
            return _converter().structure(data["data"], kind)
        return _restore(_converter().structure(data["model"], ModelState))
    except ValidationError:
        raise
    except Exception as err:
        raise ValidationError(
            "model_from_dict", None, type(err).__name__, f"cannot read a model: {err}"
        ) from err


def model_to_json(model: Any, **kwargs: Any) -> str:
    """:func:`model_to_dict` as JSON text (floats round-trip exactly).

    Examples
    --------
    >>> model_to_json(RuleGroup(name="size", cap=40.0))
    '{"record": "RuleGroup", "data": {"name": "size", "cap": 40.0, "floor": null}}'
    """
    return json.dumps(model_to_dict(model), **kwargs)


def model_from_json(text: str | bytes) -> Any:
    """The model :func:`model_to_json` wrote.

    Examples
    --------
    >>> import numpy as np
    >>> X = {"source": np.array(["web", "web", "ads", "ads"])}
    >>> nb = NaiveBayesLeadScorer(["source"]).fit(X, [1, 0, 0, 0])
    >>> back = model_from_json(model_to_json(nb))
    >>> back.team_won_, back.team_lost_  # 1 won and 3 lost leads
    ([1.0], [3.0])
    >>> back.predict_proba(X).tolist() == nb.predict_proba(X).tolist()
    True
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValidationError("model_from_json", None, None, f"is not JSON: {err}") from err
    return model_from_dict(data)
