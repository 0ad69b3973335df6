"""The multi-label task: AP and mAP against hand-computed values and against torchmetrics,
`difficult` (ignored) targets, F1 at 0.5, the masked BCE, gathering scores over ranks (a fake
second rank, and two real gloo processes)."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F

from sskt_engine import average_precision as ap
from sskt_engine.distributed import DistContext
from sskt_engine.losses import binary_cross_entropy, binary_kd_kl, masked_binary_cross_entropy
from sskt_engine.metric_info import CLASS_AP, MEAN_AP
from sskt_engine.tasks import MultiLabelTask, get_task

SCORES = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
TARGETS = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
# precision at each positive: 1/1, 2/3, 3/5
AREA = (1 + 2 / 3 + 3 / 5) / 3
# 11-point: recall levels 0-0.3 reach precision 1, 0.4-0.6 reach 2/3, 0.7-1.0 reach 0.6
VOC07 = (4 * 1 + 3 * (2 / 3) + 4 * 0.6) / 11


def test_average_precision_by_hand():
    area, voc07 = ap.average_precision(SCORES, TARGETS)
    assert area == pytest.approx(AREA) and voc07 == pytest.approx(VOC07)
    assert math.isnan(ap.average_precision(SCORES, torch.zeros(5))[0])  # no positive: no AP


def test_ignored_targets_count_neither_as_hit_nor_as_false_alarm():
    # a "difficult" entry scored highest: ignored, as the VOC devkit does
    scores = torch.cat([torch.tensor([0.99]), SCORES])
    targets = torch.cat([torch.tensor([ap.IGNORED]), TARGETS])
    assert ap.average_precision(scores, targets) == pytest.approx((AREA, VOC07))
    # counted as a negative instead, it would lower the AP
    assert ap.average_precision(scores, targets.clamp(min=0))[0] < AREA - 0.1


def test_tied_scores_form_one_step():
    # two tied items, one positive: precision 1/2 at recall 1 whatever order they come in
    assert ap.average_precision(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0]))[0] == pytest.approx(0.5)
    assert ap.average_precision(torch.tensor([0.5, 0.5]), torch.tensor([0.0, 1.0]))[0] == pytest.approx(0.5)


def test_per_class_ap_matches_torchmetrics():
    classification = pytest.importorskip("torchmetrics.functional.classification")
    generator = torch.Generator().manual_seed(3)
    n, c = 300, 7
    targets = (torch.rand(n, c, generator=generator) < 0.3).float()
    targets[torch.rand(n, c, generator=generator) < 0.05] = ap.IGNORED
    # rounded scores make ties common
    scores = ((targets.clamp(min=0) + torch.randn(n, c, generator=generator)) * 4).round() / 4
    area, _ = ap.per_class_average_precision(scores, targets)
    reference = classification.multilabel_average_precision(torch.sigmoid(scores), targets.long(), num_labels=c,
                                                            average=None, ignore_index=-1)
    assert area == pytest.approx(reference.tolist(), abs=1e-6)


def test_sample_average_precision_is_the_mean_of_each_image_s_ap():
    generator = torch.Generator().manual_seed(4)
    n, c = 50, 6
    targets = (torch.rand(n, c, generator=generator) < 0.4).float()
    targets[0] = 0.0  # an image without labels is left out of the mean
    targets[1, 0] = ap.IGNORED
    scores = (torch.randn(n, c, generator=generator) * 3).round()
    rows = [ap.average_precision(scores[i], targets[i])[0] for i in range(n)]
    expected = sum(r for r in rows if not math.isnan(r)) / sum(not math.isnan(r) for r in rows)
    assert ap.sample_average_precision(scores, targets) == pytest.approx(expected)
    assert ap.sample_average_precision(scores, targets, chunk_cells=40) == pytest.approx(expected)  # in chunks


def test_f1_at_half():
    probabilities = torch.tensor([[0.9, 0.6, 0.1], [0.2, 0.7, 0.4]])
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, ap.IGNORED]])
    # decisions: (1,1,0) vs (1,0,1): 1 hit; (0,1,-) vs (0,1,-): 1 hit. micro: 2*2 / (3 + 3)
    assert ap.f1_at(probabilities, targets) == pytest.approx(4 / 6)
    # per image: 2*1/(2+2) = 0.5 and 2*1/(1+1) = 1
    assert ap.sample_f1(probabilities, targets).item() == pytest.approx(1.5)
    nothing = torch.zeros(1, 3)
    assert ap.sample_f1(nothing, nothing).item() == 1.0 and ap.f1_at(nothing, nothing) == 1.0


def test_masked_bce_and_distillation():
    task = get_task("multi_label")
    assert isinstance(task, MultiLabelTask) and task.activation == "sigmoid" and task.headline == MEAN_AP
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, -3.0]], requires_grad=True)
    plain = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    assert task.loss(logits, plain).item() == pytest.approx(binary_cross_entropy(logits, plain).item())
    ignored = plain.clone()
    ignored[0, 2] = ap.IGNORED
    loss = masked_binary_cross_entropy(logits, ignored)
    per_entry = F.binary_cross_entropy_with_logits(logits, plain, reduction="none")
    assert loss.item() == pytest.approx((per_entry.sum() - per_entry[0, 2]).item() / 5)
    loss.backward()
    assert logits.grad[0, 2] == 0  # an ignored entry teaches nothing
    student, teacher = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.equal(task.distillation(student, teacher, 2.0), binary_kd_kl(student, teacher, 2.0))
    assert torch.allclose(task.outputs(logits.detach()), torch.sigmoid(logits.detach()))


def test_the_authors_ce_target_loss_by_hand_and_from_a_preset():
    from sskt_engine.config import loads_preset
    from sskt_engine.tasks import task_for_data

    logits = torch.tensor([[2.0, -1.0, 0.5]])
    labels = torch.tensor([[1.0, 0.0, ap.IGNORED]])  # the ignored entry counts as absent, as in their data
    t = 2.0
    # softmax(y/T) of (1, 0, 0) at T=2: e^0.5 / (e^0.5 + 2)
    weights = [math.exp(0.5) / (math.exp(0.5) + 2), 1 / (math.exp(0.5) + 2), 1 / (math.exp(0.5) + 2)]
    z = [v / t for v in (2.0, -1.0, 0.5)]
    log_norm = math.log(sum(math.exp(v) for v in z))
    by_hand = -sum(w * (v - log_norm) for w, v in zip(weights, z)) * t * t
    config = loads_preset("name: ce\ntarget: {arch: tiny_cnn}\ndata: {dataset: demo-multilabel}\n"
                          "method: {name: supervised}\ntrain: {multilabel_loss: ce, multilabel_temperature: 2.0}\n")

    class MultiLabelData:
        multi_label = True

    task = task_for_data(MultiLabelData(), config.train)
    assert task.loss(logits, labels).item() == pytest.approx(by_hand, rel=1e-6)
    assert task_for_data(MultiLabelData()).loss(logits, labels).item() == pytest.approx(
        masked_binary_cross_entropy(logits, labels).item())  # BCE stays the default
    with pytest.raises(Exception, match="multilabel_loss"):
        loads_preset("name: x\ntarget: {arch: tiny_cnn}\ndata: {dataset: demo}\nmethod: {name: supervised}\n"
                     "train: {multilabel_loss: hinge}\n")


def _logits_and_targets(seed: int, n: int = 40, c: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    targets = (torch.rand(n, c, generator=generator) < 0.4).float()
    targets[torch.rand(n, c, generator=generator) < 0.1] = ap.IGNORED
    return targets.clamp(min=0) * 2 + torch.randn(n, c, generator=generator), targets


def test_evaluator_fills_the_report_and_every_network():
    logits, targets = _logits_and_targets(0)
    evaluator = MultiLabelTask().evaluator(["peer1", "peer2"], ("a", "b", "c", "d"), torch.device("cpu"))
    evaluator.update({"peer1": logits[:25], "peer2": -logits[:25]}, targets[:25])  # two batches
    evaluator.update({"peer1": logits[25:], "peer2": -logits[25:]}, targets[25:])
    result = evaluator.compute(DistContext(), "peer1", epoch=3)
    area, voc07 = ap.per_class_average_precision(logits, targets)
    assert result.val["map"] == pytest.approx(sum(area) / 4)
    assert result.val["map_voc07"] == pytest.approx(sum(voc07) / 4)
    assert result.val["map_samples"] == pytest.approx(ap.sample_average_precision(logits, targets))
    assert result.val["f1"] == pytest.approx(ap.f1_at(torch.sigmoid(logits), targets))
    assert result.val["loss"] == pytest.approx(masked_binary_cross_entropy(logits, targets).item())
    assert result.val["peer2/map"] < result.val["peer1/map"] == result.val["map"]
    report = result.report
    assert report.epoch == 3 and report.network == "peer1" and report.confusion is None
    assert report.headline == MEAN_AP and report.per_class_metric == CLASS_AP
    assert report.per_class == pytest.approx(tuple(area)) and report.class_names == ("a", "b", "c", "d")


class _TwoRanks:
    """Stands in for rank 0 of two: ``gather_rows`` appends what rank 1 holds, call by call."""

    def __init__(self, other_rows: list[torch.Tensor]):
        self.pending = list(other_rows)

    def gather_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        return torch.cat([tensor, self.pending.pop(0)])


def test_scores_gathered_over_ranks_equal_one_evaluation_of_the_whole_split():
    logits, targets = _logits_and_targets(1)
    task = MultiLabelTask()
    whole = task.evaluator(["target"], ("a", "b", "c", "d"), torch.device("cpu"))
    whole.update({"target": logits}, targets)
    expected = whole.compute(DistContext(), "target", epoch=1)
    rank0 = task.evaluator(["target"], ("a", "b", "c", "d"), torch.device("cpu"))
    rank0.update({"target": logits[::2]}, targets[::2])  # the val stream's shard: every second sample
    combined = rank0.compute(_TwoRanks([targets[1::2], logits[1::2]]), "target", epoch=1)
    # AP is order-free over samples: the gathered split gives the same numbers
    assert combined.val == pytest.approx(expected.val)


def _gather_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        rows = torch.full((rank + 2, 3), float(rank))  # 2 rows on rank 0, 3 on rank 1
        gathered = DistContext(rank=rank, world=world).gather_rows(rows)
        torch.save(gathered, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_gather_rows_with_two_gloo_processes(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_gather_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    expected = torch.cat([torch.zeros(2, 3), torch.ones(3, 3)])
    for rank in range(2):
        assert torch.equal(torch.load(tmp_path / f"rank{rank}.pt"), expected)
    single = torch.arange(6.0).view(2, 3)
    assert DistContext().gather_rows(single) is single  # one process: nothing to gather
