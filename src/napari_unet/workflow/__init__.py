"""The one way through the U-Net that every front-end takes (no Qt, no napari, no argparse).

A model is opened from a :class:`ModelChoice` (:func:`open_model`); the annotations are
read by one set of rules into a :class:`LabelPlan` (:func:`interpret_labels`); annotated
planes become samples with a :class:`WeightRecipe`, and the model gets the head and the
class record they need (:func:`prepare_training`); held-out planes become the run's
validation (:func:`validation_set`); the core's ``train`` runs; an image is
predicted and post-processed by :func:`segment` (labels with the annotation's values,
p_k(x), instances of the object class).

The CLI (``napari_unet.cli``) turns arguments and files into these calls; the widget
(``napari_unet.widgets``) turns layers into them and runs them in threads; the scripts
call them directly. An option that one front-end offers is a field here, so the others
get it by the same code (CONTRIBUTING.md, "adding an option").
"""

from .export import EXPORT_KINDS, ExportRequest, export_model
from .inspection import PixelExplanation, class_names, explain_pixel
from .labels import LABEL_MODES, LabelPlan, detect_label_mode, distinct_values, interpret_labels
from .models import (
    ModelChoice,
    classes_for_training,
    fit_model,
    label_values_table,
    object_channel,
    open_model,
    parse_class_names,
    rename_classes,
    steps_trained,
)
from .prediction import (
    InstanceOptions,
    PredictOptions,
    Segmentation,
    annotation_labels,
    instance_channel,
    segment,
    split_instances,
)
from .samples import (
    AnnotatedPlane,
    WeightRecipe,
    annotated_planes,
    pixel_terms,
    sample_of,
    shown_weight,
    training_samples,
)
from .training import PreparedTraining, label_offset_note, prepare_training
from .validation import ValidationOptions, check_validation_labels, validation_set

__all__ = [
    "EXPORT_KINDS",
    "LABEL_MODES",
    "AnnotatedPlane",
    "ExportRequest",
    "InstanceOptions",
    "LabelPlan",
    "ModelChoice",
    "PixelExplanation",
    "PredictOptions",
    "PreparedTraining",
    "Segmentation",
    "ValidationOptions",
    "WeightRecipe",
    "annotated_planes",
    "annotation_labels",
    "class_names",
    "check_validation_labels",
    "classes_for_training",
    "detect_label_mode",
    "distinct_values",
    "explain_pixel",
    "export_model",
    "fit_model",
    "instance_channel",
    "interpret_labels",
    "label_offset_note",
    "label_values_table",
    "object_channel",
    "open_model",
    "prepare_training",
    "sample_of",
    "segment",
    "parse_class_names",
    "pixel_terms",
    "rename_classes",
    "shown_weight",
    "split_instances",
    "steps_trained",
    "training_samples",
    "validation_set",
]
