"""3. Training: the settings, Train / Cancel, and how a run goes (progress bar, a status
line, the live loss curve). The progress bar and status line report predictions too."""

from __future__ import annotations

from typing import Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
)

from ..workflow import ValidationOptions, WeightRecipe
from .form import Section, TextLabel, row
from .loss_plot import LossPlot

OPTIMIZERS = [("adam (quick fine-tuning)", "adam"), ("sgd, momentum 0.99 (paper)", "sgd")]
PRECISIONS = [("auto", "auto"), ("fp32", "fp32"), ("bf16 (mixed)", "bf16")]


class TrainingSection(Section):
    """The training settings and the run's progress."""

    def __init__(self, devices: list[str]) -> None:
        super().__init__("3. Training")
        self.steps = SpinBox(value=200, min=1, max=1_000_000, step=50)
        self.learning_rate = FloatSpinBox(value=1e-3, min=1e-5, max=1.0, step=1e-4)
        self.learning_rate.native.setDecimals(5)
        self.learning_rate.native.setMinimumWidth(95)
        self.learning_rate.value = 1e-3
        self.tile_size = SpinBox(value=128, min=16, max=2048, step=16)
        self.batch_size = SpinBox(value=2, min=1, max=64)
        self.optimizer = ComboBox(choices=OPTIMIZERS, value="adam")
        self.device = ComboBox(
            choices=[(f"auto ({devices[0]})", "auto"), *((d.upper(), d) for d in devices)],
            value="auto",
        )
        self.precision = ComboBox(choices=PRECISIONS, value="auto")
        self.augment = CheckBox(value=True, text="augmentation (elastic, flips, rotations)")
        self.precise_batch_norm = CheckBox(
            value=False, text="recompute batch-norm statistics at the end"
        )
        self.use_weight_map = CheckBox(value=True)
        self.use_weight_map.native.setText("weight map w(x)")
        self.w0 = FloatSpinBox(value=10.0, min=0.0, max=100.0, step=1.0)
        self.sigma = FloatSpinBox(value=5.0, min=0.5, max=50.0, step=0.5)
        self.class_balance = CheckBox(value=False)
        self.class_balance.native.setText("class balance w_c")
        self.validate_every = SpinBox(value=25, min=1, max=10_000, step=5)
        self.patience = SpinBox(value=0, min=0, max=999)
        self.keep_best = CheckBox(value=True, text="keep the best validation step's weights")
        self.switch_weights_button = PushButton(text="Use the last step's weights")
        self.switch_weights_button.visible = False
        self.train_button = PushButton(text="Train")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress_bar = ProgressBar(value=0, min=0, max=1)
        self.status = TextLabel()
        self.loss_plot = LossPlot()
        tips = {
            self.steps: "Optimiser steps (one batch of tiles each)",
            self.learning_rate: "Learning rate; decays along a cosine to 5 % at the last step",
            self.tile_size: "Output tile side in pixels; the input tile adds the model's context",
            self.batch_size: "Tiles per step",
            self.device: "auto: CUDA, else Apple MPS, else CPU",
            self.precision: "Arithmetic of the training steps. auto: bf16 mixed precision "
            "where the CPU/GPU computes it natively (AVX-512 BF16 / AMX CPUs: 1.5-1.8x "
            "faster steps), else fp32",
            self.augment: "Elastic deformation (the paper's), flips, 90-degree rotations, "
            "intensity jitter",
            self.precise_batch_norm: "After the last step, replace batch norm's running "
            "statistics by their mean and variance over 32 or more un-augmented tiles, "
            "computed with the final weights (a few seconds; skipped on Cancel). Helped pixel "
            "accuracy on fully drawn labels (ISBI 2012), lowered object F1 on nuclei "
            "(docs/accuracy.md). No effect without batch norm",
            self.use_weight_map: "Instance mode: w(x) = w_c(x) + w0 exp(-(d1 + d2)^2 / "
            "2 sigma^2), high weight on the gaps between touching cells",
            self.class_balance: "w_c: every annotated class weighs the same in the loss",
            self.w0: "w0: height of the border term of w(x)",
            self.sigma: "sigma: width of the border term of w(x), in pixels",
            self.validate_every: "With validation labels (section 1): score the model on "
            "them every this many steps, and after the last one",
            self.patience: "Early stopping: stop after this many validations without a better "
            "score (0: never stop early)",
            self.keep_best: "At the end, the model holds the weights of the step with the best "
            "validation score (object F1 for instance labels, else IoU); off: the last step's",
            self.switch_weights_button: "Swap the model between the best validation step's "
            "weights and the last step's (both are kept after training)",
            self.train_button: "Train the current model (a new one from 'source' if none yet)",
            self.cancel_button: "Stop after the current step; the model stays usable",
        }
        for widget, tip in tips.items():
            widget.tooltip = tip
        self.add_rows(
            [
                ("steps", row(self.steps, Label(value="learning rate"), self.learning_rate)),
                ("tile size", row(self.tile_size, Label(value="batch"), self.batch_size)),
                ("optimizer", self.optimizer),
                ("device", row(self.device, Label(value="precision"), self.precision)),
                ("", self.augment),
                ("", self.precise_batch_norm),
                ("validate", row(self.validate_every, Label(value="patience"), self.patience)),
                ("", self.keep_best),
                ("", row(self.use_weight_map, self.class_balance)),
                ("w0, sigma", row(self.w0, self.sigma)),
                ("", row(self.train_button, self.cancel_button)),
                ("", self.progress_bar),
                ("", self.status),
                ("", self.loss_plot),
                ("", self.switch_weights_button),
            ]
        )
        self.use_weight_map.changed.connect(self._on_weight_map_toggled)

    def _on_weight_map_toggled(self, *_: Any) -> None:
        self.w0.enabled = self.sigma.enabled = self.use_weight_map.value

    # ------------------------------------------------------------------ settings
    def config(self) -> Any:
        """The :class:`napari_unet.unet.training.TrainConfig` of these settings (not validated)."""
        from ..unet.training import TrainConfig

        return TrainConfig(
            steps=int(self.steps.value),
            learning_rate=float(self.learning_rate.value),
            optimizer=self.optimizer.value,
            batch_size=int(self.batch_size.value),
            tile_size=int(self.tile_size.value),
            augment=bool(self.augment.value),
            elastic=bool(self.augment.value),
            device=self.device.value,
            precision=self.precision.value,
            recompute_batch_norm=bool(self.precise_batch_norm.value),
        )

    def validation_options(self) -> ValidationOptions:
        """When to validate and stop, which weights to keep (used with validation labels)."""
        return ValidationOptions(
            every=int(self.validate_every.value),
            patience=int(self.patience.value),
            keep="best" if self.keep_best.value else "last",
        )

    def weight_recipe(self) -> WeightRecipe:
        """The w(x) recipe of these settings (eq. 2; the border term applies to instances)."""
        return WeightRecipe(
            border=bool(self.use_weight_map.value),
            w0=float(self.w0.value),
            sigma=float(self.sigma.value),
            class_balance=bool(self.class_balance.value),
        )

    def adopt_weight_map_recipe(self, model: Any) -> str | None:
        """Fine-tune with the weight map recipe the model was trained with, if it says.
        Returns what changed, for a notice ("w0 10 -> 5, sigma 5 -> 3 ..."), or None."""
        recipe = WeightRecipe.recorded(model)
        if recipe is None:
            return None
        changes = [
            f"{name} {getattr(self, name).value:g} -> {value:g}"
            for name, value in (("w0", float(recipe.w0)), ("sigma", float(recipe.sigma)))
            if float(getattr(self, name).value) != value
        ]
        if bool(self.class_balance.value) != bool(recipe.class_balance):
            changes.append(f"class balance {'on' if recipe.class_balance else 'off'}")
        self.w0.value = float(recipe.w0)
        self.sigma.value = float(recipe.sigma)
        self.class_balance.value = bool(recipe.class_balance)
        if not changes:
            return None
        return f"weight map w(x) set to the model's own recipe: {', '.join(changes)}"

    # ------------------------------------------------------------------ progress
    def begin(self, total: int, message: str) -> None:
        """A job of ``total`` steps (or planes) starts."""
        self.progress_bar.max = max(total, 1)
        self.progress_bar.value = 0
        self.status.value = message

    def advance(self, done: int) -> None:
        self.progress_bar.value = min(done, self.progress_bar.max)

    def show_steps(self, steps: list[Any]) -> None:
        """Training steps done (:class:`napari_unet.unet.training.Progress`, in order):
        each loss goes on the curve, the last one in the status line."""
        for step in steps:
            self.loss_plot.add(step.step, step.loss)
            if step.validation is not None:
                self.loss_plot.add_validation(step.validation)
        event = steps[-1]
        self.advance(event.step)
        eta = event.eta
        left = f", ~{eta:.0f} s left" if np.isfinite(eta) else ""
        scored = self.loss_plot.validation
        val = f"; {scored[-1].describe()}" if scored else ""
        self.status.value = (
            f"step {event.step}/{event.steps}: loss {event.loss:.4f}{val}, "
            f"{event.steps_per_second:.1f} steps/s{left}"
        )

    def offer_weights(self, validation: Any) -> None:
        """After a validated run: offer the other set of weights (best or last)."""
        self.switch_weights_button.visible = bool(validation and validation.can_switch)
        if validation is None or not validation.can_switch:
            return
        best = validation.holds_step == validation.best.step
        other = "the last step's" if best else f"the best step's (step {validation.best.step})"
        self.switch_weights_button.text = f"Use {other} weights"

    def set_busy(self, busy: bool) -> None:
        self.train_button.enabled = not busy
        self.cancel_button.enabled = busy
        self.switch_weights_button.enabled = not busy
