"""Validation during training: scores on annotations the model does not train on, and the
weights of the best-scoring step kept.

A :class:`Validation` holds held-out samples (prepared like the training samples: the
same normalisation, targets and w(x)). Every ``every`` steps the training loop
(:func:`napari_unet.unet.training.train`) asks it for a :class:`ValidationScore`:

- the validation loss, E / N_annotated of eq. 1 over the held-out annotated pixels, with
  their w(x), so it reads on the same scale as the training loss;
- the IoU of the object classes (k >= 2; class 1 is the background by the annotation
  convention) on the annotated pixels, intersections and unions pooled over the samples;
- for instance models, the object F1 at IoU >= 0.5 (fully drawn cells only).

The score that picks the best step is the object F1 where there is one, else the IoU.
With ``patience`` > 0 training stops after that many validations without improvement;
at the end the model holds the best step's weights (``keep="best"``) or the last ones,
and :meth:`Validation.switch` swaps between the two. The scores go into the model's
training record.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .arguments import choice, whole_number
from .data import IGNORE_INDEX, InputError, TrainingSample

if TYPE_CHECKING:
    import torch

KEEP = ("best", "last")
#: objects count as found when their IoU with a drawn cell reaches this (the usual F1@0.5)
OBJECT_IOU = 0.5


@dataclass
class ValidationScore:
    """The scores of one validation (``None``: not measurable on these annotations)."""

    step: int
    loss: float
    iou: float | None
    object_f1: float | None = None
    seconds: float = 0.0

    @property
    def score(self) -> float:
        """Higher is better: the object F1, else the IoU, else minus the loss."""
        if self.object_f1 is not None:
            return self.object_f1
        return self.iou if self.iou is not None else -self.loss

    @property
    def metric(self) -> str:
        return "object F1" if self.object_f1 is not None else "IoU"

    def describe(self) -> str:
        """'val loss 0.213, IoU 0.812' (and the object F1 of instance models)."""
        parts = [f"val loss {self.loss:.3f}"]
        if self.iou is not None:
            parts.append(f"IoU {self.iou:.3f}")
        if self.object_f1 is not None:
            parts.append(f"object F1 {self.object_f1:.3f}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class Validation:
    """Held-out samples, how often to score them, and the best weights so far.

    samples: from the same preparation as the training samples. instances: for instance
    models, the drawn cell ids of each sample (0 = background); split: the function that
    turns p_k(x) (K, H, W) into instance ids, as prediction does. every: steps between
    validations (and always after the last step). patience: stop after this many
    validations without a better score (0: never stop early). keep: the weights the model
    holds at the end, "best" or "last".
    """

    samples: Sequence[TrainingSample]
    every: int = 25
    patience: int = 0
    keep: str = "best"
    instances: Sequence[np.ndarray] | None = None
    split: Callable[[np.ndarray], np.ndarray] | None = None
    history: list[ValidationScore] = field(default_factory=list)
    best: ValidationScore | None = None
    stopped_early: bool = False
    _best_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    _last_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    last_step: int | None = None  # the last step trained (set by finish)
    holds_step: int | None = None  # the step whose weights the model holds (after finish)

    def validate(self) -> None:
        """Refuse bad settings before training starts (the scores of an earlier run are
        not touched: :func:`~napari_unet.unet.training.train` calls :meth:`reset`)."""
        if not self.samples:
            raise InputError("no validation images")
        whole_number(self.every, "validate every (steps)")
        whole_number(self.patience, "patience (validations)", minimum=0)
        choice(self.keep, "keep", KEEP)
        if (self.instances is None) != (self.split is None):
            raise InputError("object F1 needs both the drawn instances and a split function")
        if self.instances is not None and len(self.instances) != len(self.samples):
            raise InputError("one instance image per validation sample is needed")

    def check_model(self, model: Any) -> None:
        """The samples fit the model: its channels and classes."""
        for s in self.samples:
            if s.image.shape[0] != model.in_channels:
                raise InputError(
                    f"validation image {s.name!r} has {s.image.shape[0]} channel(s), the "
                    f"model expects {model.in_channels}"
                )
            annotated = s.target[s.target != IGNORE_INDEX]
            if annotated.size and int(annotated.max()) >= model.n_classes:
                raise InputError(
                    f"validation image {s.name!r} is annotated with class "
                    f"{int(annotated.max()) + 1}, the model has {model.n_classes} classes"
                )

    def due(self, step: int, last: bool) -> bool:
        return last or step % self.every == 0

    # ----------------------------------------------------------------- scoring
    def evaluate(self, model: Any, step: int) -> ValidationScore:
        """Score the model's current weights on every validation sample (fp32, no grad)."""
        import torch

        from .softmax_energy import pixel_loss
        from .tiling import predict_tiled

        t0 = time.perf_counter()
        device = next(model.parameters()).device
        loss_sum, n_annotated = 0.0, 0
        overlap: dict[int, list[int]] = {}  # class -> [intersection, union]
        tp = fp = fn = 0
        for i, s in enumerate(self.samples):
            pred = predict_tiled(
                model,
                s.image,
                channel_axis=0,
                normalize_input=False,
                device=device,
                return_probabilities=self.split is not None,
            )
            logits = torch.from_numpy(pred.logits)[None]
            target = torch.from_numpy(s.target)[None]
            loss_sum += float(pixel_loss(logits, target, torch.from_numpy(s.weight)[None]).sum())
            n_annotated += s.n_annotated
            add_overlaps(overlap, pred.labels.astype(np.int64) - 1, s.target)
            if self.split is not None and self.instances is not None:
                found = object_counts(self.split(pred.probabilities), self.instances[i])
                tp, fp, fn = tp + found[0], fp + found[1], fn + found[2]
        ious = [inter / union for c, (inter, union) in sorted(overlap.items()) if c >= 1]
        if not ious:  # only the background is annotated: score it
            ious = [inter / union for inter, union in overlap.values() if union]
        f1 = None
        if self.split is not None:
            f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
        return ValidationScore(
            step=step,
            loss=loss_sum / max(n_annotated, 1),
            iou=float(np.mean(ious)) if ious else None,
            object_f1=f1,
            seconds=time.perf_counter() - t0,
        )

    def observe(self, model: Any, score: ValidationScore) -> bool:
        """Record ``score``; keep a copy of the weights when it is the best so far (a
        higher score; an equal score with a lower loss; else the earlier step stays)."""
        self.history.append(score)
        better = self.best is None or (score.score, -score.loss) > (
            self.best.score,
            -self.best.loss,
        )
        if better:
            import torch

            self.best = score
            state = model.state_dict()
            if self._best_state is None:
                self._best_state = copy.deepcopy(state)
            else:
                with torch.no_grad():
                    for key, value in state.items():
                        self._best_state[key].copy_(value)
        elif self.patience and self._since_best() >= self.patience:
            self.stopped_early = True
        return better

    def _since_best(self) -> int:
        assert self.best is not None
        return sum(1 for s in self.history if s.step > self.best.step)

    @property
    def should_stop(self) -> bool:
        return self.stopped_early

    # ----------------------------------------------------------------- the end
    def reset(self) -> None:
        """Forget an earlier run (scores, best weights): each run starts afresh."""
        self.history, self.best, self.stopped_early = [], None, False
        self._best_state = self._last_state = None
        self.last_step = self.holds_step = None

    def finish(self, model: Any, steps_done: int, *, diverged: bool = False) -> None:
        """After the last step: score the last weights if they were not (a cancelled
        run), then hold the kept weights; both sets stay available to :meth:`switch`.
        After a divergence the restored weights stay (the message names them). Call
        :meth:`record` once the run is in the model's record."""
        self.last_step = self.holds_step = steps_done
        if diverged or self.best is None:
            return
        if self.history[-1].step != steps_done:
            self.observe(model, self.evaluate(model, steps_done))
        if self.best.step != steps_done:
            self._last_state = copy.deepcopy(model.state_dict())
            if self.keep == "best":
                self._hold(model, "best")

    @property
    def can_switch(self) -> bool:
        """The best and the last step differ, and both sets of weights are kept."""
        return self._last_state is not None

    def switch(self, model: Any) -> int:
        """Swap the model between the best and the last step's weights; the step held."""
        if not self.can_switch or self.best is None:
            raise InputError("there is no other set of weights: the best step is the last")
        self._hold(model, "last" if self.holds_step == self.best.step else "best")
        self.record(model)
        assert self.holds_step is not None
        return self.holds_step

    def _hold(self, model: Any, which: str) -> None:
        assert self.best is not None and self._best_state is not None
        state = self._best_state if which == "best" else self._last_state
        model.load_state_dict(state)
        self.holds_step = self.best.step if which == "best" else self.last_step

    def record(self, model: Any) -> None:
        """The scores, the best step and the step held, in the last training run."""
        run = model.record.last_run
        if run is None:
            return
        run.extra["validation"] = {
            "images": [s.name for s in self.samples],
            "annotated_pixels": int(sum(s.n_annotated for s in self.samples)),
            "every": self.every,
            "patience": self.patience,
            "keep": self.keep,
            "scores": [finite(s.to_dict()) for s in self.history],
            "best_step": self.best.step if self.best else None,
            "stopped_early": self.stopped_early,
            "weights_from_step": self.holds_step,
        }

    def summary(self) -> str:
        """'best IoU 0.832 at step 150 (last step 200: 0.811); the model holds step 150'."""
        if self.best is None:
            return "no validation was run"
        last = self.history[-1]
        text = f"best {self.best.metric} {self.best.score:.3f} at step {self.best.step}"
        if last.step != self.best.step:
            text += f" (last step {last.step}: {last.score:.3f})"
        if self.stopped_early:
            text += f"; stopped early after {self.patience} validation(s) without improvement"
        if self.holds_step is not None:
            text += f"; the model holds the weights of step {self.holds_step}"
        return text


def add_overlaps(overlap: dict[int, list[int]], predicted: np.ndarray, target: np.ndarray) -> None:
    """Add each annotated class's intersection and union (on annotated pixels only) of the
    predicted classes (0-based) with the target to ``overlap``."""
    annotated = target != IGNORE_INDEX
    pred, true = predicted[annotated], target[annotated]
    for c in np.unique(true):
        p, t = pred == c, true == c
        entry = overlap.setdefault(int(c), [0, 0])
        entry[0] += int(np.count_nonzero(p & t))
        entry[1] += int(np.count_nonzero(p | t))


def object_counts(predicted: np.ndarray, drawn: np.ndarray) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of predicted instances against
    drawn cells, matched one-to-one at IoU >= 0.5."""
    from ..metrics import object_scores

    scores = object_scores(predicted, drawn, OBJECT_IOU)
    return scores["tp"], scores["fp"], scores["fn"]


def finite(values: dict[str, Any]) -> dict[str, Any]:
    """NaN / inf become None (the record holds JSON numbers only)."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in values.items()
    }
