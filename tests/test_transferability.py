"""LEEP, NCE and LogME against small cases computed by hand, and the properties their papers state."""

from __future__ import annotations

import math

import pytest
import torch

from sskt_engine.transferability import leep, logme, logme_evidence, logme_multi_label, multi_label_mean, nce


def test_leep_hand_computed_three_images():
    # joint P(y, z) = [[1.4, 0.6], [0.4, 0.6]] / 3, so P(y=0 | z) = (7/9, 1/2), P(y=1 | z) = (2/9, 1/2);
    # the expected empirical predictor gives the true labels 13/18, 7/18 and 12/18.
    probs = torch.tensor([[0.8, 0.2], [0.4, 0.6], [0.6, 0.4]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 0])
    expected = (math.log(13 / 18) + math.log(7 / 18) + math.log(12 / 18)) / 3
    assert leep(probs, labels) == pytest.approx(expected, abs=1e-12)


def test_leep_bounds_perfect_and_uninformative():
    one_hot = torch.eye(3, dtype=torch.float64)[[0, 1, 2, 0]]
    assert leep(one_hot, torch.tensor([2, 0, 1, 2])) == pytest.approx(0.0, abs=1e-12)  # any relabelling is fine
    flat = torch.full((4, 5), 0.2, dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 1])
    # a flat source predicts the label frequencies: (log 1/4 + 3 log 3/4) / 4, the labels' negative entropy
    assert leep(flat, labels) == pytest.approx((math.log(0.25) + 3 * math.log(0.75)) / 4, abs=1e-12)


def test_leep_ignores_a_source_class_nobody_is_given():
    probs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    assert leep(probs, torch.tensor([0, 1])) == pytest.approx(0.0, abs=1e-12)


def test_nce_hand_computed():
    # joint: (y0, z0) 1/4, (y1, z0) 1/4, (y1, z1) 1/2; H(Y | Z) = 1/2 log 2
    assert nce(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1])) == pytest.approx(-0.5 * math.log(2))
    # the source's label determines the target's (many source classes to one target class): 0
    assert nce(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 1])) == pytest.approx(0.0, abs=1e-15)
    # one source class for everything: -H(Y), the labels' entropy
    assert nce(torch.tensor([3, 3, 3, 3]), torch.tensor([0, 1, 0, 1])) == pytest.approx(-math.log(2))


def test_logme_evidence_hand_computed():
    # F = [[1], [0]], y = [2, 1]: y1 ~ N(0, 1/beta + 1/alpha), y2 ~ N(0, 1/beta), maximized by 1/beta = 1,
    # 1/alpha = 4 - 1: evidence = -(log(2 pi 4) + 1) / 2 - (log(2 pi) + 1) / 2 = -log(4 pi) - 1, per image / 2.
    fit = logme_evidence(torch.tensor([[1.0], [0.0]]), torch.tensor([2.0, 1.0]))
    assert fit.alpha == pytest.approx(1 / 3, rel=1e-5)
    assert fit.beta == pytest.approx(1.0, rel=1e-5)
    assert fit.evidence == pytest.approx((-math.log(4 * math.pi) - 1) / 2, abs=1e-9)


def _gaussian_log_evidence(f: torch.Tensor, y: torch.Tensor, alpha: float, beta: float) -> float:
    """The evidence by its other definition: y ~ N(0, I / beta + F F^T / alpha), a dense computation."""
    n = f.shape[0]
    cov = torch.eye(n, dtype=torch.float64) / beta + f @ f.T / alpha
    return float(torch.distributions.MultivariateNormal(torch.zeros(n, dtype=torch.float64), cov).log_prob(y))


@pytest.mark.parametrize("n,d", [(30, 5), (8, 20)])  # more images than features, and fewer
def test_logme_evidence_is_the_maximum_of_the_gaussian_marginal(n, d):
    generator = torch.Generator().manual_seed(n * 100 + d)
    f = torch.randn(n, d, generator=generator, dtype=torch.float64)
    y = (f[:, 0] > 0).to(torch.float64)
    fit = logme_evidence(f, y)
    assert fit.evidence == pytest.approx(_gaussian_log_evidence(f, y, fit.alpha, fit.beta) / n, abs=1e-8)
    for da in (-0.2, 0.2):
        for db in (-0.2, 0.2):
            nearby = _gaussian_log_evidence(f, y, fit.alpha * math.exp(da), fit.beta * math.exp(db)) / n
            assert nearby < fit.evidence


def test_logme_prefers_features_that_separate_the_classes():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(120) % 4
    noise = torch.randn(120, 16, generator=generator)
    informative = noise * 0.3 + 3 * torch.nn.functional.one_hot(labels, 16).float()
    assert logme(informative, labels) > logme(noise, labels)
    # the mean over classes of each one-hot column's evidence
    columns = torch.nn.functional.one_hot(labels, 4).double()
    by_hand = sum(logme_evidence(informative, columns[:, c]).evidence for c in range(4)) / 4
    assert logme(informative, labels) == pytest.approx(by_hand, abs=1e-9)


def test_multi_label_scores_average_binary_tasks_and_skip_ignored_rows():
    targets = torch.tensor([[1, 0], [0, 1], [1, -1], [0, 1]], dtype=torch.float32)
    probs = torch.eye(2, dtype=torch.float64)[[0, 1, 0, 1]]
    # each class (the third row ignored for class 1) is exactly one source class: 0
    assert multi_label_mean(leep, probs, targets) == pytest.approx(0.0, abs=1e-12)
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
    assert math.isfinite(logme_multi_label(features, targets))


def test_scores_refuse_mismatched_labels():
    with pytest.raises(ValueError):
        leep(torch.full((3, 2), 0.5), torch.tensor([0, 1]))
    with pytest.raises(ValueError):
        nce(torch.tensor([0, 1]), torch.tensor([[0, 1]]))
