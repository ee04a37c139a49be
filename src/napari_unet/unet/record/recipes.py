"""How the model's input was normalised and its weight map w(x) made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .fields import (
    NORMALIZATION_METHODS,
    RecordError,
    _bool,
    _choice,
    _fail,
    _keys,
    _number,
    _object,
)

# ---------------------------------------------------------------- normalisation
DEFAULT_LOW, DEFAULT_HIGH = 1.0, 99.8


@dataclass(frozen=True)
class Normalization:
    """``percentile``: the low / high percentiles of each channel map to 0 / 1 (not
    clipped); ``none``: raw values, cast to float32 (low and high are None)."""

    method: str = "percentile"
    low: float | None = DEFAULT_LOW
    high: float | None = DEFAULT_HIGH

    def to_dict(self) -> dict[str, Any]:
        """The dict :func:`napari_unet.unet.data.normalize` takes."""
        if self.method == "none":
            return {"method": "none"}
        return {"method": self.method, "low": self.low, "high": self.high}

    def describe(self) -> str:
        if self.method == "none":
            return "none (raw values, cast to float32)"
        return f"percentiles {self.low:g} / {self.high:g} of each channel -> 0 / 1"

    @classmethod
    def from_dict(
        cls, value: Any, *, where: str = "", name: str = "normalization"
    ) -> Normalization:
        d = _object(value, name, where)
        method = _choice(d.get("method", "percentile"), f"{name}.method", where,
                         NORMALIZATION_METHODS)  # fmt: skip
        if method == "none":
            _keys(d, f"{name} (method 'none')", where, ["method"])
            return cls("none", None, None)
        _keys(d, name, where, ["method", "low", "high"])
        expected = "a number from 0 to 100 (a percentile)"
        low = _number(d.get("low", DEFAULT_LOW), f"{name}.low", where, 0, 100, expected)
        high = _number(d.get("high", DEFAULT_HIGH), f"{name}.high", where, 0, 100, expected)
        if not low < high:
            raise RecordError(
                where, f"{name} must have 0 <= low < high <= 100, got low {low:g}, high {high:g}"
            )
        return cls("percentile", low, high)


# ---------------------------------------------------------------- weight map
@dataclass(frozen=True)
class WeightMapRecipe:
    """w(x) = w_c(x) + w0 exp(-(d1 + d2)^2 / 2 sigma^2) as the model was trained with."""

    w0: float = 10.0
    sigma: float = 5.0
    class_balance: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"w0": self.w0, "sigma": self.sigma, "class_balance": self.class_balance}

    def describe(self) -> str:
        return f"w0 {self.w0:g}, sigma {self.sigma:g} px, class balancing " + (
            "on" if self.class_balance else "off"
        )

    @classmethod
    def from_dict(
        cls, value: Any, *, where: str = "", name: str = "weight_map"
    ) -> WeightMapRecipe:
        d = _object(value, name, where)
        _keys(d, name, where, ["w0", "sigma", "class_balance"])
        w0 = _number(d.get("w0", cls.w0), f"{name}.w0", where, 0, None,
                     "a finite number >= 0")  # fmt: skip
        sigma = _number(d.get("sigma", cls.sigma), f"{name}.sigma", where, None, None,
                        "a finite number > 0")  # fmt: skip
        if sigma <= 0:
            _fail(where, f"{name}.sigma", "a finite number > 0", d.get("sigma"))
        balance = _bool(d.get("class_balance", cls.class_balance), f"{name}.class_balance", where)
        return cls(w0, sigma, balance)
