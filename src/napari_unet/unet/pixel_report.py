"""One pixel x and the numbers behind it: a_k(x), the softmax, l(x), w(x) and its loss.

The paper's section 3 evaluated at a single x in Omega, from the arrays of the last
prediction (no forward pass):

    p_k(x) = exp(a_k(x)) / sum_k' exp(a_k'(x))                          (softmax)
    w(x)   = w_c(x) + w0 exp(-(d1(x) + d2(x))^2 / (2 sigma^2))          (eq. 2)
    loss(x) = -w(x) log p_l(x)(x)                                       (eq. 1, one term)

Classes are numbered k = 1..K as in the paper (array channel k - 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .data import IGNORE_INDEX
from .errors import InputError

__all__ = ["PixelReport", "PixelTerms", "pixel_report"]


@dataclass(frozen=True)
class PixelTerms:
    """The annotation's side of the energy for one plane (H, W), as the prediction used it:
    ``target`` the class l(x) - 1 or IGNORE_INDEX (not annotated), ``weight`` w(x), and
    ``border`` the border term of w(x) (None when the recipe has none, so w = w_c)."""

    target: np.ndarray
    weight: np.ndarray
    border: np.ndarray | None = None


@dataclass(frozen=True)
class PixelReport:
    """Everything the energy says about one pixel."""

    position: tuple[int, int]  # (row, column) in the plane
    plane: tuple[int, ...]  # the index of the plane in a stack, () for an image
    logits: np.ndarray  # (K,) a_k(x)
    probabilities: np.ndarray  # (K,) p_k(x), float64
    class_names: tuple[str, ...]
    annotated_plane: bool = False  # an annotation of x's plane was given
    label: int | None = None  # l(x), 1-based; None = not annotated
    weight: float | None = None  # w(x)
    border: float | None = None  # the border term of w(x)
    loss: float | None = None  # -w(x) log p_l(x)(x)

    @property
    def class_weight(self) -> float | None:
        """w_c(x) = w(x) minus the border term."""
        if self.weight is None:
            return None
        return self.weight - (self.border or 0.0)

    @property
    def predicted(self) -> int:
        """argmax_k p_k(x), 1-based (the segmentation's class)."""
        return int(np.argmax(self.probabilities)) + 1

    def lines(self, plane_axes: Sequence[str] = ()) -> list[str]:
        """The report as text, the softmax and the loss written out with the numbers
        (``plane_axes``: the names of the stack's leading axes, e.g. ("z",))."""
        return [
            self._where(plane_axes),
            "a_k(x): " + ", ".join(f"a_{k} = {a:.4g}" for k, a in self._k(self.logits)),
            *self._softmax(),
            f"predicted: class {self.predicted} ({self._name(self.predicted)})",
            *self._energy(),
        ]

    def _where(self, plane_axes: Sequence[str]) -> str:
        row, col = self.position
        where = f"x = (row {row}, column {col}) in Omega"
        if self.plane:
            names = list(plane_axes)
            names = names if len(names) == len(self.plane) else ["plane"] * len(self.plane)
            where += ", " + ", ".join(f"{n} = {i}" for n, i in zip(names, self.plane, strict=True))
        return where

    def _k(self, values: np.ndarray) -> list[tuple[int, float]]:
        return [(k + 1, float(v)) for k, v in enumerate(values)]

    def _name(self, k: int) -> str:
        return self.class_names[k - 1] if k - 1 < len(self.class_names) else f"class {k}"

    def _softmax(self) -> list[str]:
        exps = " + ".join(f"exp({a:.4g})" for _, a in self._k(self.logits))
        logits = self.logits.astype(np.float64)
        log_total = float(logits.max() + np.log(np.exp(logits - logits.max()).sum()))
        total = math.exp(log_total) if log_total < 700 else math.inf
        shown = f"{total:.5g}" if math.isfinite(total) else f"exp({log_total:.5g})"
        lines = ["p_k(x) = exp(a_k(x)) / S, with", f"  S = {exps} = {shown}"]
        for (k, a), p in zip(self._k(self.logits), self.probabilities, strict=True):
            lines.append(f"  p_{k} = exp({a:.4g}) / {shown} = {p:.4f} ({self._name(k)})")
        return lines

    def _energy(self) -> list[str]:
        if not self.annotated_plane:
            return ["l(x): no annotation given for this plane"]
        if self.label is None:
            return ["l(x): not annotated, so x adds nothing to the energy E"]
        lines = [f"l(x) = {self.label} ({self._name(self.label)})"]
        if self.weight is not None:
            if self.border is not None:
                lines += [
                    "w(x) = w_c(x) + w0 exp(-(d1 + d2)^2 / 2 sigma^2)",
                    f"     = {self.class_weight:.4g} + {self.border:.4g} = {self.weight:.4g}",
                ]
            else:
                lines.append(f"w(x) = w_c(x) = {self.weight:.4g} (no border term)")
        if self.loss is not None:
            p_l = float(self.probabilities[self.label - 1])
            lines += [
                f"loss(x) = -w(x) log p_{self.label}(x)",
                f"        = -{self.weight:.4g} x log({p_l:.4g}) = {self.loss:.4g}",
            ]
        return lines


def pixel_report(
    logits: np.ndarray,
    position: tuple[int, int],
    *,
    plane: tuple[int, ...] = (),
    terms: PixelTerms | None = None,
    class_names: Sequence[str] = (),
) -> PixelReport:
    """The :class:`PixelReport` of pixel ``position`` (row, column) of one plane.

    ``logits``: a_k(x) of the plane, (K, H, W). ``terms``: the plane's annotation side
    (:class:`PixelTerms`), if it was annotated. p_k(x) and the loss are computed here in
    float64 from a_k(x) (log p_l = a_l - log sum_k exp a_k, the stable form); they agree
    with the ``p_k(x)`` and ``loss(x)`` layers to float32 precision.
    """
    a = np.asarray(logits)
    if a.ndim != 3:
        raise InputError(f"a_k(x) of one plane is (K, H, W), got shape {a.shape}")
    row, col = (int(v) for v in position)
    if not (0 <= row < a.shape[1] and 0 <= col < a.shape[2]):
        raise InputError(f"pixel ({row}, {col}) lies outside the {a.shape[1:]} plane")
    a_x = a[:, row, col].astype(np.float64)
    log_total = float(a_x.max() + math.log(np.exp(a_x - a_x.max()).sum()))
    probabilities = np.exp(a_x - log_total)
    report = dict(
        position=(row, col),
        plane=tuple(int(i) for i in plane),
        logits=a_x,
        probabilities=probabilities,
        class_names=tuple(class_names),
    )
    if terms is None:
        return PixelReport(**report)
    report["annotated_plane"] = True
    target = int(terms.target[row, col])
    if target == IGNORE_INDEX:
        return PixelReport(**report)
    if not 0 <= target < a.shape[0]:
        raise InputError(f"l(x) = {target + 1} is not one of the model's {a.shape[0]} classes")
    weight = float(terms.weight[row, col])
    border = float(terms.border[row, col]) if terms.border is not None else None
    loss = weight * (log_total - float(a_x[target]))
    return PixelReport(**report, label=target + 1, weight=weight, border=border, loss=loss)
