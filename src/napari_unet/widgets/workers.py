"""The long-running work of the widget, as generators run in napari thread workers.

Each job is a plain generator that yields small event objects (progress, a refreshed
prediction, a notice) and returns a :class:`JobDone`. It never touches a layer: the widget
applies the events in the main thread. A job stops between two steps (or planes) when its
``cancel`` event is set, finishing cleanly so the model stays usable. torch's grad mode is
thread-local, so the core sets it inside the worker thread (``torch.enable_grad`` in
training, ``torch.inference_mode`` in prediction).
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..workflow import AnnotatedPlane, LabelPlan, WeightRecipe

Index = tuple[int, ...]
Region = tuple[int, int, int, int]  # y0, y1, x0, x1 within a plane


class JobFailed(Exception):
    """A job raised a RuntimeError (torch's usual error type, and the core's
    ``TrainingDiverged``). superqt's GeneratorWorker treats a RuntimeError as "the worker was
    deleted" and drops it silently (no ``errored``, no ``finished``), so :func:`guarded`
    re-raises it as this; the original is ``__cause__``."""


def guarded(job: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a job (a generator or a plain function) for its worker thread: torch gets the
    machine's threads there (:mod:`napari_unet.runtime.threads`), and every error of a
    generator reaches the worker's ``errored`` signal."""
    from ..runtime.threads import use_worker_threads

    if not inspect.isgeneratorfunction(job):

        def call(*args: Any, **kwargs: Any) -> Any:
            use_worker_threads()
            return job(*args, **kwargs)

        call.__name__ = call.__qualname__ = getattr(job, "__name__", "job")
        return call

    def run(*args: Any, **kwargs: Any) -> Generator[Any, None, Any]:
        use_worker_threads()
        try:
            return (yield from job(*args, **kwargs))
        except RuntimeError as err:
            raise JobFailed(str(err)) from err

    run.__name__ = run.__qualname__ = getattr(job, "__name__", "job")
    return run


#: a refresh every REFRESH_SHARE_INVERSE x its cost at most: ~5 % of the time
REFRESH_SHARE_INVERSE = 19


# ------------------------------------------------------------------------------- events
@dataclass
class Notice:
    """Something the user should know (shown as a napari info notification)."""

    message: str


@dataclass
class StepsDone:
    """The training steps done since the last report: the core's ``Progress`` of each, in
    order. Reports come a few times a second, not once a step: every update of the dock
    repaints the window, and under software OpenGL that costs the training its CPU."""

    steps: list[Any]


@dataclass
class WeightsReady:
    """w(x) of the training planes (0 where not annotated), known before the first step."""

    planes: list[Index]
    weights: list[np.ndarray]
    applied: threading.Event = field(default_factory=threading.Event, repr=False)


@dataclass
class PlaneResult:
    """The prediction of one plane (or of a region of it during a live refresh)."""

    index: Index
    region: Region
    probabilities: np.ndarray  # (K, h, w) p_k(x)
    labels: np.ndarray  # (h, w) class values k + 1
    logits: np.ndarray | None = None  # (K, h, w) a_k(x)
    instances: np.ndarray | None = None  # (h, w) uint32, ids unique within the plane
    weight: np.ndarray | None = None  # (h, w) w(x), 0 where not annotated
    loss: np.ndarray | None = None  # (h, w) -w(x) log p_l(x)(x), 0 where not annotated
    entropy: np.ndarray | None = None  # (h, w) H(x), the uncertainty of p_k(x)
    terms: Any = None  # the plane's l(x), w(x) and border term (unet.pixel_report.PixelTerms)
    classes: list[tuple[int, str]] | None = None  # (segmentation value, class name) per k
    live: bool = False  # a refresh during training (p_k(x), H(x) and segmentation)
    #: set by the main thread once the result is in its layers (see :func:`hand_over`)
    applied: threading.Event = field(default_factory=threading.Event, repr=False)


@dataclass
class ActivationResult:
    level: str
    channels: np.ndarray  # (C, h, w)
    scale: float
    translate: tuple[float, float]
    index: Index
    offset: tuple[int, int]


@dataclass
class GalleryResult:
    """A level's channels (shown as the activation layer) and their gallery."""

    activations: ActivationResult
    mosaic: Any  # unet.channel_gallery.Mosaic
    statistics: Any  # unet.channel_gallery.ChannelStatistics


@dataclass
class GradientResult:
    """|d a_k(x) / d input| over the receptive field of one pixel."""

    index: Index
    position: tuple[int, int]
    k: int  # 1-based class
    gradient: np.ndarray  # (h, w) over the field
    field: Any  # unet.receptive_field.ReceptiveField


@dataclass
class JobDone:
    kind: str  # "train", "predict", "activations"
    cancelled: bool = False
    steps: int = 0  # training steps, or planes predicted
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the status: what was done, how fast."""
        if self.cancelled:
            verb = {"train": "training", "predict": "prediction"}.get(self.kind, self.kind)
            line = f"{verb} cancelled after {self.steps} step(s); model kept"
            if self.extra.get("validation") is not None:
                line += f"; validation: {self.extra['validation'].summary()}"
            return line
        if self.kind == "train":
            rate = self.steps / self.seconds if self.seconds > 0 else 0.0
            line = f"trained {self.steps} steps in {self.seconds:.1f} s ({rate:.1f} steps/s)"
            if self.extra.get("validation") is not None:
                line += f"; validation: {self.extra['validation'].summary()}"
            return f"{line}; {self.extra['note']}" if self.extra.get("note") else line
        return f"predicted {self.steps} plane(s) in {self.seconds:.1f} s"


@dataclass
class LiveView:
    """Which plane (and region of it) the live refresh during training predicts."""

    index: Index
    region: Region


# ------------------------------------------------------------------------------- helpers
def view_region(shape: tuple[int, int], center: tuple[float, float], max_side: int) -> Region:
    """A window of at most ``max_side`` per side centred (as far as possible) on ``center``."""
    region = []
    for n, c in zip(shape, center, strict=True):
        side = min(n, max_side)
        start = int(np.clip(round(c - side / 2), 0, n - side))
        region += [start, start + side]
    return tuple(region)  # type: ignore[return-value]


def named_values(model: Any) -> list[tuple[int, str]]:
    """(segmentation value, class name) of each class channel of ``model``."""
    from ..workflow import class_names, label_values_table

    table = label_values_table(model)
    values = table.tolist() if table is not None else range(1, model.n_classes + 1)
    return [(int(v), n) for v, n in zip(values, class_names(model), strict=True)]


def _crop(a: np.ndarray, region: Region) -> np.ndarray:
    y0, y1, x0, x1 = region
    return a[..., y0:y1, x0:x1]


def _index_suffix(index: Index) -> str:
    return f"[{', '.join(map(str, index))}]" if index else ""


class _Cancelled(Exception):
    """Raised between two tiles of a plane when the user cancels."""


def _loss_map(logits: np.ndarray, sample: Any) -> np.ndarray:
    """-w(x) log p_{l(x)}(x) on annotated pixels, 0 elsewhere (softmax_energy.pixel_loss)."""
    import torch

    from ..unet.softmax_energy import pixel_loss

    with torch.inference_mode():
        loss = pixel_loss(
            torch.from_numpy(logits)[None],
            torch.from_numpy(sample.target)[None],
            torch.from_numpy(sample.weight)[None],
        )[0]
    return loss.numpy().astype(np.float32)


# ------------------------------------------------------------------------------- training
@dataclass
class TrainingPlane:
    index: Index
    image: np.ndarray  # (C, H, W), a copy taken in the main thread
    labels: np.ndarray  # (H, W), a copy
    source: str = ""  # the image layer's name ("": the image of the live view)


def train_job(
    model: Any,
    planes: Sequence[TrainingPlane],
    plan: LabelPlan,
    recipe: WeightRecipe,
    config: Any,
    cancel: threading.Event,
    live_view: Callable[[], LiveView | None],
    read_plane: Callable[[Index], np.ndarray],
    *,
    image_name: str = "",
    class_names: list[str] | None = None,
    validation_planes: Sequence[TrainingPlane] = (),
    validation_options: Any = None,
    label_mode: str = "auto",
    refresh_seconds: float = 3.0,
    report_seconds: float = 0.5,
    wait_for_gui: bool = False,
) -> Generator[Any, None, JobDone]:
    """Fit the head to the classes, prepare the samples (the workflow's
    :func:`~napari_unet.workflow.prepare_training`), train; refresh the live view.

    With ``validation_planes`` the model is scored on them every
    ``validation_options.every`` steps (workflow.validation_set; the scores come with the
    steps) and the :class:`~napari_unet.unet.validation.Validation` is returned in
    ``JobDone.extra["validation"]``.

    Yields :class:`Notice`, :class:`WeightsReady`, :class:`StepsDone` every
    ``report_seconds`` and after the last step done, and a live :class:`PlaneResult` every
    ``refresh_seconds`` and at the end; at most ~5 % of the time goes to refreshes (with
    fp32 previews on a 2-core CPU, 10 % kept the widget below 0.85x the headless speed).
    ``wait_for_gui``: after w(x) and each live result, wait until the widget has written
    it (:func:`hand_over`); the wait counts as refresh time.
    """
    from ..unet.data import normalize
    from ..unet.training import train
    from ..workflow import (
        PredictOptions,
        ValidationOptions,
        check_validation_labels,
        prepare_training,
        segment,
        shown_weight,
        validation_set,
    )

    t0 = time.perf_counter()

    def source(p: TrainingPlane) -> str:
        return p.source or image_name

    annotated = [
        AnnotatedPlane(p.image, p.labels, source(p) + _index_suffix(p.index)) for p in planes
    ]
    held_out = [
        AnnotatedPlane(p.image, p.labels, source(p) + _index_suffix(p.index))
        for p in validation_planes
    ]
    if held_out:  # refused before the model is fitted: a refusal changes nothing
        check_validation_labels(held_out, plan, annotated, label_mode)
    prepared = prepare_training(
        model,
        annotated,
        plan,
        recipe,
        class_names=class_names,
        flips=config.augment,
        cancelled=cancel.is_set,
    )
    validation, notes = None, []
    if held_out:
        validation, notes = validation_set(
            model,
            held_out,
            plan,
            recipe,
            validation_options or ValidationOptions(),
            training=annotated,
            mode=label_mode,
        )
    for notice in prepared.notices + notes:
        yield Notice(notice)
    samples = prepared.samples
    if cancel.is_set():
        return JobDone("train", cancelled=True, seconds=time.perf_counter() - t0)
    shown = [(p, s) for p, s in zip(planes, samples, strict=True) if source(p) == image_name]
    ready = WeightsReady([p.index for p, _ in shown], [shown_weight(s) for _, s in shown])
    yield from _deliver(ready, cancel, wait_for_gui)
    by_index = {p.index: s for p, s in shown}  # the planes of the image in view
    from ..runtime.devices import resolve_device, resolve_precision

    # the live preview runs in the training's arithmetic (bf16 where native: ~2.5x faster
    # refreshes, 99.8 % of labels as in fp32); Predict stays fp32
    preview = PredictOptions(
        device=config.device,
        precision=resolve_precision(config.precision, resolve_device(config.device)),
    )

    def refresh() -> PlaneResult | None:
        view = live_view()
        if view is None:
            return None
        sample = by_index.get(view.index)
        if sample is not None:
            plane = sample.image
        else:
            plane = normalize(read_plane(view.index), model.record.normalization_dict())
        region = _crop(plane, view.region)
        seg = segment(model, region, 0, preview, probabilities=True, entropy=True, normalized=True)
        return PlaneResult(
            view.index,
            view.region,
            seg.probabilities,
            seg.labels,
            entropy=seg.entropy,
            classes=named_values(model),
            live=True,
        )

    gen = train(
        model,
        samples,
        config,
        description=f"napari widget, {plan.mode}",
        validation=validation,
    )
    steps = refreshes = 0
    last_refresh, refresh_cost, refresh_total = time.perf_counter(), 0.0, 0.0
    cancelled = False
    unreported: list[Any] = []
    last_report = 0.0
    try:
        for progress in gen:
            steps = progress.step
            unreported.append(progress)
            now = time.perf_counter()
            if progress.step >= progress.steps or now - last_report >= report_seconds:
                yield StepsDone(unreported)
                unreported, last_report = [], now
            if cancel.is_set():
                cancelled = True
                break
            if progress.step < progress.steps and now - last_refresh >= max(
                refresh_seconds, REFRESH_SHARE_INVERSE * refresh_cost
            ):
                result = refresh()
                if result is not None:
                    yield from _deliver(result, cancel, wait_for_gui)
                refresh_cost = time.perf_counter() - now
                last_refresh = time.perf_counter()
                refreshes, refresh_total = refreshes + 1, refresh_total + refresh_cost
                if cancel.is_set():
                    cancelled = True
                    break
    finally:
        gen.close()  # model.eval() and the training record, in this thread
    if unreported:  # cancelled between two reports
        yield StepsDone(unreported)
    if not cancelled:
        result = refresh()
        if result is not None:
            yield from _deliver(result, cancel, wait_for_gui)
    done = JobDone("train", cancelled=cancelled, steps=steps, seconds=time.perf_counter() - t0)
    done.extra.update(refreshes=refreshes, refresh_seconds=refresh_total)
    if validation is not None and validation.best is not None:
        done.extra["validation"] = validation
    last_run = model.record.last_run
    recomputed = last_run is not None and last_run.batch_norm_recomputed
    if config.recompute_batch_norm and not cancelled and not recomputed:
        done.extra["note"] = (
            "batch-norm statistics not recomputed (the model has no batch norm, or the pass "
            "failed: see the terminal); the training statistics are kept"
        )
    return done


# ------------------------------------------------------------------------------- hand-over
def hand_over(event: WeightsReady | PlaneResult, cancel: threading.Event) -> None:
    """Wait until the main thread has written ``event`` into its layers (it sets
    ``event.applied``), or the job is cancelled, or 10 s have passed.

    napari adds a layer in ~150 ms under software OpenGL, and updates one in ~50 ms; with
    torch's threads on every core meanwhile, the event loop stalled for 0.4-0.8 s at the
    first refresh (docs/benchmarks.md, "Training in the widget")."""
    deadline = time.perf_counter() + 10.0
    while not event.applied.wait(0.02):
        if cancel.is_set() or time.perf_counter() > deadline:
            return


def _deliver(
    event: WeightsReady | PlaneResult, cancel: threading.Event, wait_for_gui: bool
) -> Generator[Any, None, None]:
    """Yield ``event`` to the widget and, with ``wait_for_gui``, :func:`hand_over`."""
    yield event
    if wait_for_gui:
        hand_over(event, cancel)


# ------------------------------------------------------------------------------- prediction
def predict_job(
    model: Any,
    indices: Sequence[Index],
    read_plane: Callable[[Index], np.ndarray],
    read_labels: Callable[[Index], np.ndarray] | None,
    annotations: tuple[LabelPlan, WeightRecipe] | None,
    device: str,
    cancel: threading.Event,
    *,
    tta: bool = False,
    wait_for_gui: bool = False,
) -> Generator[PlaneResult, None, JobDone]:
    """Overlap-tile prediction plane by plane (the workflow's
    :func:`~napari_unet.workflow.segment`): a_k(x), p_k(x), labels with the annotation's
    values, instances of the model's object class if it has one, and where the plane is
    annotated, w(x) and the per-pixel loss of the current model. ``tta``: average a_k(x)
    over the 8 flips/quarter turns of each plane. ``wait_for_gui``: after the first plane,
    wait until the widget has written it (:func:`hand_over`), so napari creates the
    result layers without competing with torch; later planes are predicted while the
    widget writes the earlier ones."""
    from ..unet.data import InputError, normalize
    from ..workflow import InstanceOptions, PredictOptions, pixel_terms, sample_of, segment

    t0 = time.perf_counter()
    norm = model.record.normalization_dict()
    options = PredictOptions(device=device, tta=tta)

    def check(_done: int, _total: int) -> None:
        if cancel.is_set():
            raise _Cancelled

    for n, index in enumerate(indices):
        if cancel.is_set():
            return JobDone("predict", cancelled=True, steps=n, seconds=time.perf_counter() - t0)
        plane = read_plane(index)
        try:  # a large plane (8 views with tta) stops between two tiles
            seg = segment(
                model,
                normalize(plane, norm),
                0,
                options,
                instances=InstanceOptions(),
                instances_asked=False,
                probabilities=True,
                logits=True,
                entropy=True,
                normalized=True,
                progress=check,
            )
        except _Cancelled:
            return JobDone("predict", cancelled=True, steps=n, seconds=time.perf_counter() - t0)
        h, w = plane.shape[-2:]
        result = PlaneResult(
            index, (0, h, 0, w), seg.probabilities, seg.labels, seg.logits, seg.instances
        )
        result.entropy, result.classes = seg.entropy, named_values(model)
        if read_labels is not None and annotations is not None:
            labels = read_labels(index)
            plan, recipe = annotations
            if np.any(labels):
                try:
                    sample = sample_of(model, AnnotatedPlane(plane, labels), plan, recipe)
                except InputError:
                    sample = None  # e.g. a class the model does not have: no loss to show
                if sample is not None and int(sample.target.max()) < seg.logits.shape[0]:
                    result.terms = pixel_terms(sample, labels, plan, recipe)
                    result.weight = result.terms.weight
                    result.loss = _loss_map(seg.logits, sample)
        # the first plane makes napari add the layers; later planes only update them
        yield from _deliver(result, cancel, wait_for_gui and n == 0)
    return JobDone("predict", steps=len(indices), seconds=time.perf_counter() - t0)


def activations_job(
    model: Any,
    plane: np.ndarray,
    index: Index,
    region: Region,
    level: str,
    device: str,
) -> ActivationResult:
    """Capture one level's channels for a region of a plane (the plane is normalised whole,
    then cropped, so the colours match the prediction)."""
    from ..unet.activations import capture_activations
    from ..unet.data import normalize

    normalized = normalize(plane, model.record.normalization_dict())
    acts = capture_activations(
        model,
        np.ascontiguousarray(_crop(normalized, region)),
        [level],
        channel_axis=0,
        normalize_input=False,
        device=device,
    )[level]
    return ActivationResult(
        level, acts.channels, acts.scale, acts.translate, index, (region[0], region[2])
    )


def gallery_job(
    model: Any,
    plane: np.ndarray,
    index: Index,
    region: Region,
    level: str,
    device: str,
    classes: np.ndarray | None,
) -> GalleryResult:
    """The channels of one level (as :func:`activations_job`), their mosaic and statistics
    (``classes``: the plane's annotation as classes 1..K, 0 = not annotated)."""
    from ..unet.channel_gallery import channel_mosaic, channel_statistics, labels_on_level

    acts = activations_job(model, plane, index, region, level, device)
    level_labels = None
    if classes is not None:
        level_labels = labels_on_level(
            classes, acts.channels.shape[-2:], acts.scale, acts.translate, acts.offset
        )
    return GalleryResult(
        acts, channel_mosaic(acts.channels), channel_statistics(acts.channels, level_labels)
    )


def gradient_job(
    model: Any,
    plane: np.ndarray,
    index: Index,
    position: tuple[int, int],
    k: int,
    device: str,
) -> GradientResult:
    """|d a_k(x) / d input| of the pinned pixel x over its receptive field (``k``: the
    0-based class, the predicted one in the widget)."""
    from ..runtime.devices import resolve_device
    from ..unet.data import normalize
    from ..unet.receptive_field import input_gradient

    normalized = normalize(plane, model.record.normalization_dict())
    gradient, field = input_gradient(model, normalized, position, k, device=resolve_device(device))
    return GradientResult(index, position, k + 1, gradient, field)


@dataclass
class Exported:
    """A model written for other tools."""

    kind: str  # "bioimageio" or "torchscript"
    path: Any  # pathlib.Path


def export_job(model: Any, request: Any) -> Exported:
    """Write the model as ``request`` (a workflow.ExportRequest) asks: bioimage.io validates
    the package with bioimageio.spec, which takes a few seconds."""
    from ..workflow import export_model

    return Exported(request.kind, export_model(model, request))
