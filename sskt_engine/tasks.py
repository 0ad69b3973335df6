"""Tasks: everything that depends on the kind of labels, in one class per kind.

A task says
* the target loss, and the distillation term between two networks' outputs (KD, DML);
* how logits become outputs (``activation``: softmax over classes, or a sigmoid per class);
* the training-window metric the Progress events carry (``train_score``, summed on the device);
* the validation metrics: an evaluator sums per batch on the device and over ranks once at
  the end, and fills the epoch's numbers and its ``EvalReport``;
* what the headline metric is called and how it is shown (``headline``, plain data that the
  run's files and events carry to the CLI, the study tables and the GUI).

The trainer, the methods (``MethodContext.task``) and predict ask the task; none of them looks
at the shape of the labels. Each kind of labels (single-label: cross-entropy, accuracy, softmax;
multi-label: BCE, mAP, sigmoid) is one ``Task`` subclass registered here; adding the second
changed nothing in the trainer.

Why single-label metrics are hand-written sums and not torchmetrics: top-1, top-5 and the
confusion matrix are a handful of tensor sums per batch, exact, and distributed-correct with
one all-reduce each; torchmetrics gave the same numbers 4x slower here (100 classes, 10,000
samples: 21 ms against 83-88 ms on one CPU thread) and costs an extra 2-3 s of import. Metrics
whose state cannot be summed (average precision keeps every score) are gathered over ranks in
``compute`` (``DistContext.gather_rows``) and ranked by ``average_precision.py``, a few lines of
torch checked against torchmetrics in the tests, so training does not import it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, Sequence

import torch

from . import average_precision as ap
from .distributed import DistContext
from .errors import UserInputError
from .eval_report import EvalReport
from .losses import binary_kd_kl, cross_entropy, kd_kl, masked_binary_cross_entropy, multi_hot_soft_cross_entropy
from .metric_info import (ACCURACY, CLASS_ACCURACY, CLASS_AP, F1_AT_HALF, MEAN_AP, MEAN_AP_SAMPLES, MEAN_AP_VOC07,
                          SAMPLE_F1, TOP5, MetricInfo)

# How logits become outputs, by name. Exported model files record ``multi_label``; a task
# names its activation so predict never guesses from the shape of the logits.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "softmax": lambda logits: torch.softmax(logits, dim=1),  # one class per image
    "sigmoid": torch.sigmoid,  # each class on its own (multi-label)
}


@dataclass(frozen=True)
class Evaluation:
    """One epoch's validation numbers: ``val`` goes into ``EpochEnd.val`` and summary.json
    (the headline key, ``loss``, and ``<network>/<key>`` for every network of a method with
    several), ``report`` into eval/last.json (and best.json)."""

    val: dict[str, float]
    report: EvalReport


class Evaluator(ABC):
    """Accumulates one validation pass. ``update`` runs per batch and stays on the device (no
    host sync); ``compute`` reduces over ranks and reads back once."""

    @abstractmethod
    def update(self, logits_by_network: Mapping[str, torch.Tensor], labels: torch.Tensor) -> None: ...

    @abstractmethod
    def compute(self, dist: DistContext, primary: str, epoch: int) -> Evaluation:
        """``primary``: the network whose numbers are the run's; ``epoch``: 1-based, for the report."""


class Task(ABC):
    name: ClassVar[str]
    activation: ClassVar[str]  # a key of ACTIVATIONS
    headline: ClassVar[MetricInfo]  # the validation metric that picks the best epoch and names the run's result
    train_metric: ClassVar[MetricInfo]  # what Progress.train_acc and EpochEnd.train[key] hold

    @abstractmethod
    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The target loss, a batch mean."""

    @abstractmethod
    def distillation(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     temperature: float) -> torch.Tensor:
        """``T^2 * KL(teacher outputs || student outputs)`` in this task's output space, batch mean.
        The caller detaches the teacher."""

    @abstractmethod
    def train_score(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The training-window metric summed over the batch, as a 0-d device tensor (no host
        sync: the trainer reads it back once per log window). Divided by the samples seen."""

    @abstractmethod
    def evaluator(self, networks: Sequence[str], class_names: Sequence[str], device: torch.device) -> Evaluator:
        ...

    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return ACTIVATIONS[self.activation](logits)


# ----------------------------------------------------------------------------- single-label

class SingleLabelTask(Task):
    """One class per image: cross-entropy, softmax, accuracy (top-1; top-5 from 5 classes on),
    per-class accuracy and the confusion matrix."""

    name = "single_label"
    activation = "softmax"
    headline = ACCURACY
    train_metric = ACCURACY

    def loss(self, logits, labels):
        return cross_entropy(logits, labels)

    def distillation(self, student_logits, teacher_logits, temperature):
        return kd_kl(student_logits, teacher_logits, temperature)

    def train_score(self, logits, labels):
        return (logits.argmax(dim=1) == labels).sum()

    def evaluator(self, networks, class_names, device):
        return SingleLabelEvaluator(list(networks), tuple(class_names), device)


class SingleLabelEvaluator(Evaluator):
    def __init__(self, networks: list[str], class_names: tuple[str, ...], device: torch.device):
        self.networks = networks
        self.class_names = class_names
        classes = self.classes = len(class_names)
        self.top5_counted = classes >= 5
        n = len(networks)
        self.loss_sum = torch.zeros(n, device=device)
        self.top1 = torch.zeros(n, device=device)
        self.top5 = torch.zeros(n, device=device)
        self.confusion = torch.zeros(n, classes * classes, device=device, dtype=torch.long)
        self.seen = torch.zeros(1, device=device)

    def update(self, logits_by_network, labels):
        classes = self.classes
        n = labels.shape[0]
        self.seen += n
        for i, name in enumerate(self.networks):
            logits = logits_by_network[name]
            self.loss_sum[i] += cross_entropy(logits, labels) * n
            pred = logits.argmax(dim=1)
            self.top1[i] += (pred == labels).sum()
            if self.top5_counted:
                k5 = logits.topk(5, dim=1).indices
                self.top5[i] += (k5 == labels[:, None]).any(dim=1).sum()
            self.confusion[i] += torch.bincount(labels * classes + pred, minlength=classes * classes)

    def compute(self, dist, primary, epoch):
        for tensor in (self.loss_sum, self.top1, self.top5, self.confusion, self.seen):
            dist.sum_(tensor)  # each rank saw its share of the validation split
        seen = max(int(self.seen.item()), 1)
        names, classes = self.networks, self.classes
        loss_l, top1_l, top5_l = ((self.loss_sum / seen).tolist(), (self.top1 / seen).tolist(),
                                  (self.top5 / seen).tolist())
        p = names.index(primary) if primary in names else 0
        val = {"loss": loss_l[p], ACCURACY.key: top1_l[p]}
        if self.top5_counted:
            val[TOP5.key] = top5_l[p]
        if len(names) > 1:
            for i, name in enumerate(names):
                val[f"{name}/{ACCURACY.key}"] = top1_l[i]
                val[f"{name}/loss"] = loss_l[i]
        matrix = self.confusion[p].view(classes, classes).tolist()
        per_class = tuple(row[c] / max(sum(row), 1) for c, row in enumerate(matrix))
        metrics = (ACCURACY, TOP5) if self.top5_counted else (ACCURACY,)
        report = EvalReport(epoch=epoch, network=names[p], metrics=metrics, values={m.key: val[m.key] for m in metrics},
                            loss=val["loss"], class_names=self.class_names, per_class_metric=CLASS_ACCURACY,
                            per_class=per_class, confusion=tuple(tuple(row) for row in matrix))
        return Evaluation(val, report)


# ----------------------------------------------------------------------------- multi-label

class MultiLabelTask(Task):
    """Any number of classes per image: targets float [N, C] of 1 present / 0 absent / -1 ignored.
    BCE-with-logits, a sigmoid per class, distillation per class (Bernoulli KL), and on validation
    mAP (area under the PR curve; headline), VOC07 11-point mAP, the sample-averaged mAP of the
    SSKT authors' code, micro F1 at 0.5 and AP per class. The training-window score is the
    per-image F1 at 0.5, since AP of a window cannot be summed."""

    name = "multi_label"
    activation = "sigmoid"
    headline = MEAN_AP
    train_metric = SAMPLE_F1

    def __init__(self, loss: str = "bce", temperature: float = 1.0):
        self.loss_kind, self.temperature = loss, temperature

    def loss(self, logits, labels):
        if self.loss_kind == "ce":
            return multi_hot_soft_cross_entropy(logits, labels, self.temperature)
        return masked_binary_cross_entropy(logits, labels)

    def distillation(self, student_logits, teacher_logits, temperature):
        return binary_kd_kl(student_logits, teacher_logits, temperature)

    def train_score(self, logits, labels):
        return ap.sample_f1(torch.sigmoid(logits.float()), labels)

    def evaluator(self, networks, class_names, device):
        return MultiLabelEvaluator(list(networks), tuple(class_names), device)


class MultiLabelEvaluator(Evaluator):
    """Keeps every logit of the validation split (on the device, per batch); ``compute`` gathers
    them and the targets over ranks (AP state cannot be summed) and ranks them on the CPU."""

    METRICS = (MEAN_AP, MEAN_AP_VOC07, MEAN_AP_SAMPLES, F1_AT_HALF)

    def __init__(self, networks: list[str], class_names: tuple[str, ...], device: torch.device):
        self.networks = networks
        self.class_names = class_names
        self.device = device
        self.logits: dict[str, list[torch.Tensor]] = {name: [] for name in networks}
        self.targets: list[torch.Tensor] = []

    def update(self, logits_by_network, labels):
        self.targets.append(labels.float())
        for name in self.networks:
            self.logits[name].append(logits_by_network[name].float())

    def _gathered(self, dist: DistContext, parts: list[torch.Tensor]) -> torch.Tensor:
        local = torch.cat(parts) if parts else torch.zeros((0, len(self.class_names)), device=self.device)
        return dist.gather_rows(local).cpu()

    def compute(self, dist, primary, epoch):
        targets = self._gathered(dist, self.targets)
        names = self.networks
        p = names.index(primary) if primary in names else 0
        val: dict[str, float] = {}
        report = None
        for i, name in enumerate(names):
            logits = self._gathered(dist, self.logits[name])
            loss = float(masked_binary_cross_entropy(logits, targets)) if len(targets) else math.nan
            area, voc07 = ap.per_class_average_precision(logits, targets)
            values = {MEAN_AP.key: ap.nan_mean(area), MEAN_AP_VOC07.key: ap.nan_mean(voc07),
                      MEAN_AP_SAMPLES.key: ap.sample_average_precision(logits, targets),
                      F1_AT_HALF.key: ap.f1_at(torch.sigmoid(logits), targets)}
            if i == p:
                val.update({"loss": loss, **values})
                report = EvalReport(epoch=epoch, network=name, metrics=self.METRICS, values=values, loss=loss,
                                    class_names=self.class_names, per_class_metric=CLASS_AP,
                                    per_class=tuple(area), confusion=None)
            if len(names) > 1:
                val[f"{name}/{MEAN_AP.key}"] = values[MEAN_AP.key]
                val[f"{name}/loss"] = loss
        assert report is not None
        return Evaluation(val, report)


# ----------------------------------------------------------------------------- choosing a task

TASKS: dict[str, type[Task]] = {SingleLabelTask.name: SingleLabelTask, MultiLabelTask.name: MultiLabelTask}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator for a new kind of labels."""
    if cls.name in TASKS:
        raise ValueError(f"task {cls.name!r} is already registered")
    TASKS[cls.name] = cls
    return cls


def get_task(name: str) -> Task:
    try:
        return TASKS[name]()
    except KeyError:
        raise UserInputError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None


def task_name(multi_label: bool) -> str:
    """The task of a dataset or a model file, from the ``multi_label`` flag both record."""
    return "multi_label" if multi_label else "single_label"


def task_for_data(data: Any, train: Any = None) -> Task:
    """The task of loaded data (``DatasetSplits``); ``train`` (a ``TrainConfig``) chooses the
    multi-label target loss (``multilabel_loss``, ``multilabel_temperature``)."""
    name = task_name(bool(getattr(data, "multi_label", False)))
    if name == MultiLabelTask.name and train is not None:
        return MultiLabelTask(train.multilabel_loss, train.multilabel_temperature)
    return get_task(name)


def output_activation(model_meta: Mapping[str, Any]) -> Callable[[torch.Tensor], torch.Tensor]:
    """How an exported model's logits become outputs: its task's activation. Model files record
    ``multi_label``; a multi-label file predicts with a sigmoid per class."""
    task = TASKS.get(task_name(bool(model_meta.get("multi_label", False))))
    return ACTIVATIONS[task.activation if task is not None else "sigmoid"]
