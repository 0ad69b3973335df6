"""The baselines KD, DML and MAXL: their losses against hand-computed values, MAXL's
second-order meta-gradient against finite differences, DML's symmetry, KD's refusal of a
teacher with other classes, and every method through the real Trainer with stop and resume."""

from __future__ import annotations

import math
import threading

import pytest
import torch
import torch.nn as nn

from sskt_engine import events as ev
from sskt_engine.config import loads_preset
from sskt_engine.data.batches import Batch
from sskt_engine.errors import UserInputError
from sskt_engine.losses import (batch_negative_entropy, binary_kd_kl, dml_losses, focal_loss, kd_loss,
                                masked_subclass_softmax)
from sskt_engine.methods import METHODS
from sskt_engine.methods.base import MethodContext
from sskt_engine.methods.kd import check_teacher
from sskt_engine.methods.maxl import maxl_meta_objective
from sskt_engine.models.target import TargetOutput
from sskt_engine.sources import FrozenSource, SourceEnsemble
from sskt_engine.tasks import SingleLabelTask
from sskt_engine.trainer import Trainer

Z = torch.tensor([[0.5, 1.0, 0.0]])  # student logits
S = torch.tensor([[2.0, 0.0, -1.0]])  # teacher logits


def _softmax(values, t=1.0):
    exps = [math.exp(v / t) for v in values]
    return [e / sum(exps) for e in exps]


def _kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


# ----------------------------------------------------------------------------- losses by hand

def test_kd_loss_by_hand():
    lam, t = 0.9, 4.0
    q = _softmax(Z[0].tolist())
    ce = -math.log(q[1])
    kl = _kl(_softmax(S[0].tolist(), t), _softmax(Z[0].tolist(), t))
    total, target, distill = kd_loss(Z, S, torch.tensor([1]), lam, t, SingleLabelTask())
    assert target.item() == pytest.approx(ce, rel=1e-6)
    assert distill.item() == pytest.approx(t * t * kl, rel=1e-6)
    assert total.item() == pytest.approx((1 - lam) * ce + lam * t * t * kl, rel=1e-6)


def test_kd_loss_does_not_train_the_teacher():
    student, teacher = Z.clone().requires_grad_(True), S.clone().requires_grad_(True)
    kd_loss(student, teacher, torch.tensor([0]), 0.9, 4.0, SingleLabelTask())[0].backward()
    assert teacher.grad is None and student.grad is not None


def test_binary_kd_for_multi_label_by_hand():
    t = 2.0
    z, s = [0.5, -1.0], [2.0, 0.0]
    expected = 0.0
    for zc, sc in zip(z, s):
        p, q = 1 / (1 + math.exp(-sc / t)), 1 / (1 + math.exp(-zc / t))
        expected += p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
    expected = t * t * expected / 2  # mean over the two classes, like BCE-with-logits
    assert binary_kd_kl(torch.tensor([z]), torch.tensor([s]), t).item() == pytest.approx(expected, rel=1e-6)


def test_dml_losses_by_hand_for_two_and_three_peers():
    y = torch.tensor([2])
    a, b, c = Z, S, torch.tensor([[0.0, -0.5, 1.5]])
    pa, pb, pc = (_softmax(x[0].tolist()) for x in (a, b, c))
    terms = dml_losses([a, b], y, SingleLabelTask())
    assert terms[0][0].item() == pytest.approx(-math.log(pa[2]), rel=1e-6)
    assert terms[0][1].item() == pytest.approx(_kl(pb, pa), rel=1e-6)  # KL(p_other || p_self)
    assert terms[1][1].item() == pytest.approx(_kl(pa, pb), rel=1e-6)
    three = dml_losses([a, b, c], y, SingleLabelTask())
    assert three[0][1].item() == pytest.approx((_kl(pb, pa) + _kl(pc, pa)) / 2, rel=1e-6)
    assert three[2][1].item() == pytest.approx((_kl(pa, pc) + _kl(pb, pc)) / 2, rel=1e-6)


def test_dml_mimicry_term_treats_the_other_peer_as_a_constant():
    a, b = Z.clone().requires_grad_(True), S.clone().requires_grad_(True)
    ce, kl = dml_losses([a, b], torch.tensor([0]), SingleLabelTask())[0]
    (ce + kl).backward()
    assert b.grad is None and a.grad is not None


def test_focal_loss_by_hand():
    q = _softmax(Z[0].tolist())
    expected = -((1 - q[0]) ** 2) * math.log(q[0])
    assert focal_loss(Z, torch.tensor([0]), 2.0).item() == pytest.approx(expected, rel=1e-6)
    assert focal_loss(Z, torch.tensor([0]), 0.0).item() == pytest.approx(-math.log(q[0]), rel=1e-6)


def test_masked_subclass_softmax_by_hand():
    logits = torch.tensor([[1.0, 2.0, 3.0, 0.0, 0.5, -1.0]])  # 3 classes x psi 2
    probs = masked_subclass_softmax(logits, torch.tensor([1]), psi=2)
    expected = _softmax([3.0, 0.0])
    assert probs[0].tolist() == pytest.approx([0, 0, expected[0], expected[1], 0, 0], abs=1e-7)
    probs = masked_subclass_softmax(logits.repeat(2, 1), torch.tensor([0, 2]), psi=2)
    assert probs[0, :2].tolist() == pytest.approx(_softmax([1.0, 2.0]))
    assert probs[1, 4:].tolist() == pytest.approx(_softmax([0.5, -1.0]))
    assert probs.sum(dim=1).tolist() == pytest.approx([1.0, 1.0])


def test_batch_negative_entropy_by_hand():
    probs = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    mean = [0.25, 0.25, 0.5, 0.0]
    expected = sum(m * math.log(m) for m in mean if m > 0)
    value = batch_negative_entropy(probs)
    assert value.item() == pytest.approx(expected, rel=1e-6)
    leaf = probs.clone().requires_grad_(True)
    batch_negative_entropy(leaf).backward()
    assert torch.isfinite(leaf.grad).all()  # an unused sub-class does not poison the gradient


# ----------------------------------------------------------------------------- MAXL's meta-gradient

class TwoHeads(nn.Module):
    """A tiny multi-task net: shared tanh layer, primary head and auxiliary head, plus a buffer
    that a forward in train mode changes (like BatchNorm's running statistics)."""

    def __init__(self, d: int, classes: int, psi: int):
        super().__init__()
        self.shared = nn.Linear(d, 4)
        self.primary = nn.Linear(4, classes)
        self.aux = nn.Linear(4, classes * psi)
        self.register_buffer("calls", torch.zeros((), dtype=torch.float64))

    def forward(self, x):
        self.calls += 1
        h = torch.tanh(self.shared(x))
        return TargetOutput(self.primary(h), [self.aux(h)])


def test_maxl_meta_gradient_matches_finite_differences():
    torch.manual_seed(0)
    classes, psi, d = 2, 2, 3
    net = TwoHeads(d, classes, psi).double()
    generator = nn.Linear(d, classes * psi).double()
    x = torch.randn(5, d, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1])
    kwargs = dict(inner_lr=0.5, gamma=2.0, entropy_weight=0.2)

    def objective() -> torch.Tensor:
        return maxl_meta_objective(net, masked_subclass_softmax(generator(x), y, psi), x, y, **kwargs)[0]

    meta = objective()
    grads = torch.autograd.grad(meta, list(generator.parameters()))
    assert net.calls.item() == 0  # the meta step ran on copies of the buffers
    eps = 1e-6
    for param, grad in zip(generator.parameters(), grads):
        numeric = torch.zeros_like(param)
        flat = param.data.view(-1)  # perturbed in place; the objective itself needs autograd
        for i in range(param.numel()):
            flat[i] += eps
            up = objective().item()
            flat[i] -= 2 * eps
            down = objective().item()
            flat[i] += eps
            numeric.view(-1)[i] = (up - down) / (2 * eps)
        assert torch.allclose(grad, numeric, rtol=1e-5, atol=1e-8), (grad, numeric)


def test_maxl_meta_gradient_is_second_order():
    """Without the virtual step's second-order path only the entropy term would reach the generator."""
    torch.manual_seed(1)
    net = TwoHeads(3, 2, 2).double()
    generator = nn.Linear(3, 4).double()
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.tensor([0, 1, 0, 1])
    meta = maxl_meta_objective(net, masked_subclass_softmax(generator(x), y, 2), x, y, inner_lr=0.5,
                               entropy_weight=0.0)[0]
    grad = torch.autograd.grad(meta, generator.weight)[0]
    assert grad.abs().sum() > 1e-6


# ----------------------------------------------------------------------------- DML symmetry

def _batch(pixels: torch.Tensor, images: torch.Tensor, labels: torch.Tensor) -> Batch:
    return Batch(pixels, images, labels, torch.arange(len(labels)))


def _context(preset: str, *overrides: str, sources=None, classes=6, names=None) -> MethodContext:
    cfg = loads_preset(preset, overrides=list(overrides))
    names = names or tuple(f"c{i}" for i in range(classes))
    return MethodContext(cfg, classes, names, 32, torch.device("cpu"), sources)


TINY = """\
name: methods
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 4, val_split: 0.1}
method: {name: supervised}
train: {epochs: 2, batch_size: 16, lr: 0.05, schedule: cosine, seed: 1, deterministic: true, log_every: 1,
        device: cpu}
"""


def test_dml_two_peers_are_symmetric_under_swapping():
    torch.manual_seed(0)
    ctx = _context(TINY, "method.name=dml")
    first = METHODS.get("dml").build(ctx)
    swapped = METHODS.get("dml").build(_context(TINY, "method.name=dml"))
    swapped.networks["peer1"].load_state_dict(first.networks["peer2"].state_dict())
    swapped.networks["peer2"].load_state_dict(first.networks["peer1"].state_dict())
    images = torch.randn(8, 3, 32, 32)
    labels = torch.randint(0, 6, (8,))
    out_a = first.train_step(_batch(images, images, labels), 0)
    out_b = swapped.train_step(_batch(images, images, labels), 0)
    for term in ("ce", "kl"):
        assert out_a.losses[f"peer1/{term}"].item() == pytest.approx(out_b.losses[f"peer2/{term}"].item(), rel=1e-6)
        assert out_a.losses[f"peer2/{term}"].item() == pytest.approx(out_b.losses[f"peer1/{term}"].item(), rel=1e-6)
    assert out_a.losses["loss"].item() == pytest.approx(out_b.losses["loss"].item(), rel=1e-6)
    for a_name, b_name in (("peer1", "peer2"), ("peer2", "peer1")):
        params_a = dict(first.networks[a_name].named_parameters())
        for name, p_b in swapped.networks[b_name].named_parameters():
            assert torch.allclose(params_a[name].grad, p_b.grad, atol=1e-7)
            assert torch.allclose(params_a[name], p_b, atol=1e-7)
    assert out_a.losses["peer1/kl"].item() > 0  # different peers do learn from each other


def test_dml_exports_the_best_peer_and_reports_each_arch():
    method = METHODS.get("dml").build(_context(TINY, "method.name=dml", "method.peers=3",
                                         "method.peer_archs=[tiny_cnn, small_cnn, tiny_cnn]"))
    assert list(method.networks) == ["peer1", "peer2", "peer3"] and len(method.optimizers) == 3
    assert method.network_archs() == {"peer1": "tiny_cnn", "peer2": "small_cnn", "peer3": "tiny_cnn"}
    assert method.export_network({"peer1": 0.2, "peer2": 0.5, "peer3": 0.4}) == "peer2"
    assert method.export_network({"peer1": 0.5, "peer2": 0.5, "peer3": 0.4}) == "peer1"
    with pytest.raises(UserInputError, match="one architecture per peer"):
        METHODS.get("dml").build(_context(TINY, "method.name=dml", "method.peer_archs=[tiny_cnn]"))


# ----------------------------------------------------------------------------- KD's teacher check

def _frozen(name: str, classes: int, class_names=None) -> FrozenSource:
    from sskt_engine.models import build_architecture

    module = build_architecture("tiny_cnn", classes).eval()
    return FrozenSource(name, module, classes, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), class_names, "test")


def test_kd_refuses_a_teacher_with_another_class_count():
    sources = SourceEnsemble([_frozen("shapes", 12)])
    with pytest.raises(UserInputError) as info:
        METHODS.get("kd").build(_context(TINY, "method.name=kd", "sources=[{kind: run, path: x}]", sources=sources))
    assert str(info.value) == ("source 'shapes' cannot be the KD teacher: it predicts 12 classes but the target "
                               "dataset has 6; KD needs a teacher trained on the target's classes")


def test_kd_refuses_a_teacher_with_other_class_names_and_accepts_a_matching_one():
    target_names = ("a", "b", "c")
    wrong = SourceEnsemble([_frozen("other", 3, ("a", "x", "c"))])
    ctx = _context(TINY, "method.name=kd", "sources=[{kind: run, path: x}]", sources=wrong, classes=3,
                   names=target_names)
    with pytest.raises(UserInputError, match="class 1 is 'x' for the teacher but 'b' for the target"):
        check_teacher(ctx, 0)
    good = SourceEnsemble([_frozen("shapes", 12), _frozen("same", 3, target_names), _frozen("unnamed", 3)])
    ctx = _context(TINY, "method.name=kd", "method.teacher=1", "sources=[{kind: run, path: x}]", sources=good,
                   classes=3, names=target_names)
    assert check_teacher(ctx, 1).name == "same" and check_teacher(ctx, 2).name == "unnamed"
    with pytest.raises(UserInputError, match="only 3 source"):
        check_teacher(ctx, 3)
    method = METHODS.get("kd").build(ctx)
    out = method.train_step(_batch(torch.rand(4, 3, 32, 32), torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])), 0)
    assert set(out.losses) == {"loss", "target", "kd"} and torch.isfinite(out.losses["loss"])


# ----------------------------------------------------------------------------- through the Trainer

@pytest.fixture(scope="module")
def sources_dir(tmp_path_factory):
    """Two earlier runs to use as sources: one on the target's own classes (a KD teacher) and one
    on the shapes task (an SSKT source, and a teacher KD must refuse)."""
    root = tmp_path_factory.mktemp("sources")
    demo = Trainer(loads_preset(TINY, overrides=["train.epochs=1", "name=teacher"]), root).run()
    shapes = Trainer(loads_preset(TINY, overrides=["train.epochs=1", "name=shapes", "data.dataset=demo-shapes"]),
                     root).run()
    return {"demo": demo.path, "shapes": shapes.path}


def _method_config(method: str, sources_dir):
    overrides = [f"method.name={method}"]
    if method in ("sskt", "fitnets"):
        overrides.append(f"sources=[{{kind: run, path: '{sources_dir['shapes']}', name: shapes}}]")
    if method == "kd":
        overrides.append(f"sources=[{{kind: run, path: '{sources_dir['demo']}', name: teacher}}]")
    return loads_preset(TINY, overrides=overrides)


@pytest.mark.parametrize("method", ["supervised", "sskt", "kd", "dml", "maxl", "fitnets"])
def test_method_trains_stops_and_resumes_like_an_uninterrupted_run(method, sources_dir, tmp_path):
    cfg = _method_config(method, sources_dir)
    seen: list = []
    straight = Trainer(cfg, tmp_path / "a", seen.append).run()
    assert straight.summary().status == "finished", straight.summary().message

    stop = threading.Event()

    def stop_after_first_epoch(event):
        if isinstance(event, ev.EpochEnd) and event.epoch == 0:
            stop.set()

    folder = Trainer(cfg, tmp_path / "b", stop_after_first_epoch, stop).run()
    assert folder.summary().status == "stopped" and folder.summary().epochs_completed == 1
    resumed = Trainer.resume(folder.path).run().summary()
    assert resumed.status == "finished" and resumed.epochs_completed == 2
    assert resumed.final_val["loss"] == pytest.approx(straight.summary().final_val["loss"], abs=1e-5)
    assert resumed.final_score == pytest.approx(straight.summary().final_score, abs=1e-6)

    progress = next(e for e in seen if isinstance(e, ev.Progress))
    expected = {"supervised": {"loss", "target"}, "sskt": {"loss", "target", "aux/shapes"},
                "kd": {"loss", "target", "kd"},
                "dml": {"loss", "target", "peer1/ce", "peer1/kl", "peer2/ce", "peer2/kl"},
                "maxl": {"loss", "target", "aux", "meta", "neg_entropy"},
                "fitnets": {"loss", "target", "hint/shapes"}}[method]
    assert set(progress.losses) == expected
    assert all(math.isfinite(v) for v in progress.losses.values())
    checkpoint = torch.load(straight.checkpoint_path("last"), weights_only=True)
    if method == "dml":
        final = straight.summary().final_val
        assert {"peer1/acc", "peer2/acc"} <= set(final)
        best_peer = max(("peer1", "peer2"), key=lambda p: final[f"{p}/acc"])
        assert checkpoint["meta"]["export_network"] == best_peer
        assert set(checkpoint["optimizers"]) == {"peer1", "peer2"}
    if method == "maxl":
        assert set(checkpoint["optimizers"]) == {"target", "generator"} and "generator" in checkpoint
        assert checkpoint["optimizers"]["generator"]["param_groups"][0]["initial_lr"] == pytest.approx(1e-3)
        assert set(checkpoint["models"]) == {"target"}  # the generator is never exported
    if method == "fitnets":  # the adapters are saved for resume (which matched above), never as a network
        assert set(checkpoint["models"]) == {"target"} and "adapters" in checkpoint


def test_kd_refuses_the_shapes_teacher_before_any_run_folder(sources_dir, tmp_path):
    cfg = loads_preset(TINY, overrides=["method.name=kd",
                                        f"sources=[{{kind: run, path: '{sources_dir['shapes']}', name: shapes}}]"])
    with pytest.raises(UserInputError, match="predicts 12 classes but the target dataset has 6"):
        Trainer(cfg, tmp_path / "runs").run()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_dml_run_can_be_a_source_and_maxl_state_round_trips(sources_dir, tmp_path):
    """A DML run's exported peer serves as a KD teacher; MAXL's generator and both optimizers
    survive state_dict/load_state_dict."""
    dml = Trainer(_method_config("dml", sources_dir).replace(), tmp_path).run()
    kd = loads_preset(TINY, overrides=["method.name=kd", "train.epochs=1",
                                       f"sources=[{{kind: run, path: '{dml.path}'}}]"])
    assert Trainer(kd, tmp_path).run().summary().status == "finished"

    ctx = _context(TINY, "method.name=maxl")
    torch.manual_seed(0)
    method = METHODS.get("maxl").build(ctx)
    method.train_step(_batch(torch.rand(4, 3, 32, 32), torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])), 0)
    state = method.state_dict()
    torch.manual_seed(1)
    other = METHODS.get("maxl").build(ctx)
    other.load_state_dict(state)
    for a, b in zip(method.generator.state_dict().values(), other.generator.state_dict().values()):
        assert torch.equal(a, b)
    assert other.optimizers["generator"].state_dict()["state"].keys() == state["optimizers"]["generator"]["state"].keys()


@pytest.mark.parametrize("method", ["kd", "dml", "maxl", "fitnets"])
def test_methods_step_through_an_amp_scaler(method):
    """The GradScaler path (CUDA's AMP) on CPU: scaled backward, unscaled steps, one update per step."""
    sources = SourceEnsemble([_frozen("teacher", 6)])
    ctx = _context(TINY, f"method.name={method}", "sources=[{kind: run, path: x}]", sources=sources)
    ctx.scaler = torch.amp.GradScaler("cpu")
    torch.manual_seed(0)
    model = METHODS.get(method).build(ctx)
    before = [p.detach().clone() for net in model.networks.values() for p in net.parameters()]
    for step in range(2):
        out = model.train_step(_batch(torch.rand(8, 3, 32, 32), torch.randn(8, 3, 32, 32), torch.randint(0, 6, (8,))),
                               step)
        assert all(torch.isfinite(v) for v in out.losses.values())
    after = [p.detach() for net in model.networks.values() for p in net.parameters()]
    assert all(not torch.equal(a, b) for a, b in zip(before, after))
    if method == "maxl":
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.generator.parameters())


@pytest.mark.parametrize("method", ["dml", "maxl"])
def test_nan_policy_skip_skips_the_whole_step(method):
    ctx = _context(TINY, f"method.name={method}", "train.nan_policy=skip")
    torch.manual_seed(0)
    model = METHODS.get(method).build(ctx)
    before = [p.detach().clone() for net in model.networks.values() for p in net.parameters()]
    images = torch.randn(4, 3, 32, 32)
    images[0, 0, 0, 0] = float("nan")
    model.train_step(_batch(images, images, torch.tensor([0, 1, 2, 3])), 7)
    assert ctx.skipped_steps == [7]
    after = [p.detach() for net in model.networks.values() for p in net.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
