"""The single-label task: its evaluator against numbers worked out by hand, sums that add up
over ranks, the training-window score, how it is chosen, and how logits become outputs."""

from __future__ import annotations

import math

import pytest
import torch

from sskt_engine.errors import UserInputError
from sskt_engine.losses import kd_kl
from sskt_engine.metric_info import ACCURACY, TOP5
from sskt_engine.tasks import MultiLabelTask, SingleLabelTask, get_task, output_activation, task_for_data
from sskt_engine.distributed import DistContext

CLASSES = ("a", "b", "c", "d", "e", "f")
# 4 samples, 6 classes. Predictions (argmax): 0, 2, 2, 5; labels: 0, 1, 2, 3.
LOGITS = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0],   # right
                       [0.0, 4.0, 5.0, 3.0, 2.0, 1.0],   # wrong; label 1 is 2nd: in the top 5
                       [0.0, 1.0, 5.0, 2.0, 3.0, 4.0],   # right
                       [1.0, 2.0, 3.0, 0.0, 4.0, 5.0]])  # wrong; label 3 is last: not in the top 5
LABELS = torch.tensor([0, 1, 2, 3])


def _ce(row, label):
    return -(row[label] - math.log(sum(math.exp(v) for v in row)))


def test_evaluator_matches_hand_computed_numbers():
    task = SingleLabelTask()
    evaluator = task.evaluator(["target"], CLASSES, torch.device("cpu"))
    evaluator.update({"target": LOGITS[:3]}, LABELS[:3])  # two batches, as the trainer feeds them
    evaluator.update({"target": LOGITS[3:]}, LABELS[3:])
    result = evaluator.compute(DistContext(), "target", epoch=6)
    loss = sum(_ce(LOGITS[i].tolist(), int(LABELS[i])) for i in range(4)) / 4
    assert result.val == pytest.approx({"loss": loss, "acc": 0.5, "top5": 0.75})
    report = result.report
    assert report.epoch == 6 and report.network == "target" and report.metrics == (ACCURACY, TOP5)
    assert report.values == pytest.approx({"acc": 0.5, "top5": 0.75}) and report.loss == pytest.approx(loss)
    assert report.per_class == (1.0, 0.0, 1.0, 0.0, 0.0, 0.0)  # classes without samples count 0
    assert report.confusion[1] == (0, 0, 1, 0, 0, 0) and report.confusion[3] == (0, 0, 0, 0, 0, 1)
    assert sum(map(sum, report.confusion)) == 4 and report.class_names == CLASSES


def test_top5_only_from_five_classes_and_every_network_of_a_method():
    task = SingleLabelTask()
    evaluator = task.evaluator(["peer1", "peer2"], ("x", "y", "z"), torch.device("cpu"))
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    evaluator.update({"peer1": logits, "peer2": -logits}, torch.tensor([0, 1]))  # peer2 always wrong
    result = evaluator.compute(DistContext(), "peer2", epoch=1)
    assert "top5" not in result.val and result.report.metrics == (ACCURACY,)
    assert result.val["peer1/acc"] == 1.0 and result.val["peer2/acc"] == 0.0
    assert result.val["acc"] == 0.0 and result.report.network == "peer2"  # the primary network's numbers


class _OtherRank:
    """Stands in for a second rank: ``sum_`` adds what that rank's evaluator summed."""

    def __init__(self, other):
        self.pending = [other.loss_sum, other.top1, other.top5, other.confusion, other.seen]

    def sum_(self, tensor):
        match = next(t for t in self.pending if t.shape == tensor.shape and t.dtype == tensor.dtype)
        self.pending.remove(match)
        return tensor.add_(match)


def test_sums_over_ranks_equal_one_evaluation_of_the_whole_split():
    task = SingleLabelTask()
    whole = task.evaluator(["target"], CLASSES, torch.device("cpu"))
    whole.update({"target": LOGITS}, LABELS)
    expected = whole.compute(DistContext(), "target", epoch=1)
    rank0, rank1 = (task.evaluator(["target"], CLASSES, torch.device("cpu")) for _ in range(2))
    rank0.update({"target": LOGITS[::2]}, LABELS[::2])
    rank1.update({"target": LOGITS[1::2]}, LABELS[1::2])
    combined = rank0.compute(_OtherRank(rank1), "target", epoch=1)
    assert combined.val == pytest.approx(expected.val)
    assert combined.report.confusion == expected.report.confusion


def test_training_score_and_losses():
    task = SingleLabelTask()
    assert task.train_score(LOGITS, LABELS).item() == 2  # a device tensor: the trainer sums it per window
    assert task.loss(LOGITS, LABELS).item() == pytest.approx(
        sum(_ce(LOGITS[i].tolist(), int(LABELS[i])) for i in range(4)) / 4, rel=1e-6)
    student, teacher = LOGITS[:2], LOGITS[2:]
    assert torch.equal(task.distillation(student, teacher, 4.0), kd_kl(student, teacher, 4.0))
    assert torch.allclose(task.outputs(LOGITS).sum(dim=1), torch.ones(4))


def test_choosing_the_task():
    class Data:
        multi_label = False

    assert isinstance(task_for_data(Data()), SingleLabelTask)
    Data.multi_label = True
    assert isinstance(task_for_data(Data()), MultiLabelTask)  # the dataset decides the task
    with pytest.raises(UserInputError, match="unknown task 'video'"):
        get_task("video")


def test_output_activation_of_model_files():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    assert torch.allclose(output_activation({"multi_label": False})(logits), torch.softmax(logits, dim=1))
    assert torch.allclose(output_activation({})(logits), torch.softmax(logits, dim=1))
    assert torch.allclose(output_activation({"multi_label": True})(logits), torch.sigmoid(logits))
