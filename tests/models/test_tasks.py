"""Task models: classification problem types and segmentation (2D/3D, skips on/off) train."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hfssl import HfsslConfig, HfsslForImageClassification, HfsslForSegmentation


def _backward_ok(model: torch.nn.Module, loss: torch.Tensor) -> None:
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize(
    "problem, num_labels, labels",
    [
        ("single_label_classification", 2, torch.tensor([0, 1, 1])),  # binary
        ("single_label_classification", 5, torch.tensor([0, 4, 2])),  # multi-class
        ("multi_label_classification", 4, torch.tensor([[1.0, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 1]])),
        ("ordinal", 5, torch.tensor([0, 3, 4])),
    ],
)
def test_classification_problem_types(problem, num_labels, labels):
    head = "mlp" if problem == "ordinal" else "linear"  # the paper's GAP -> FC 1024 -> out head, once
    config = HfsslConfig(
        backbone="resnet18",
        image_size=28,
        num_labels=num_labels,
        problem_type=problem,
        classifier_head=head,
        ordinal_head="regression" if problem == "ordinal" else None,
    )
    model = HfsslForImageClassification(config)
    out = model(torch.rand(3, 1, 28, 28), labels=labels)
    n_out = 1 if problem == "ordinal" else num_labels
    assert out.logits.shape == (3, n_out)
    # the loss is the textbook one for the problem type
    logits = out.logits.detach()
    expected = {
        "single_label_classification": lambda: F.cross_entropy(logits, labels),
        "multi_label_classification": lambda: F.binary_cross_entropy_with_logits(logits, labels),
        "ordinal": lambda: F.mse_loss(logits[:, 0], labels.float()),
    }[problem]()
    assert torch.allclose(out.loss.detach(), expected)
    _backward_ok(model, out.loss)
    if head == "mlp":
        assert model.classifier.hidden[0].out_features == 1024


def test_problem_type_inferred_from_labels_like_transformers():
    model = HfsslForImageClassification(HfsslConfig(backbone="resnet18", image_size=28, num_labels=3))
    x = torch.rand(2, 1, 28, 28)
    single = model(x, labels=torch.tensor([0, 2]))
    multi = model(x, labels=torch.tensor([[1.0, 0, 1], [0, 1, 0]]))
    assert torch.allclose(single.loss, F.cross_entropy(single.logits, torch.tensor([0, 2])))
    assert torch.allclose(
        multi.loss, F.binary_cross_entropy_with_logits(multi.logits, torch.tensor([[1.0, 0, 1], [0, 1, 0]]))
    )


def test_predict_grades_rounds_and_clips():
    model = HfsslForImageClassification(
        HfsslConfig(
            backbone="resnet18",
            image_size=28,
            num_labels=5,
            problem_type="ordinal",
            ordinal_head="regression",
        )
    )
    grades = model.predict_grades(torch.tensor([[-0.7], [0.49], [0.51], [2.5], [3.6], [9.0]]))
    assert grades.tolist() == [0, 0, 1, 2, 4, 4]
    assert grades.dtype == torch.long
    # tuned cut points replace rounding
    model.config.ordinal_thresholds = [0.2, 1.0, 2.9, 3.5]
    assert model.predict_grades(torch.tensor([[0.1], [0.3], [2.8], [3.0], [3.6]])).tolist() == [0, 1, 2, 3, 4]


def test_ordinal_classification_head_is_softmax_ce():
    config = HfsslConfig(
        backbone="test_resnet",
        image_size=28,
        num_labels=5,
        problem_type="ordinal",
        ordinal_head="classification",
    )
    model = HfsslForImageClassification(config)
    labels = torch.tensor([0, 3, 4])
    out = model(torch.rand(3, 1, 28, 28), labels=labels)
    assert out.logits.shape == (3, 5)
    assert torch.allclose(out.loss, F.cross_entropy(out.logits, labels))
    proba = model.predict_proba(out.logits)
    assert torch.allclose(proba, out.logits.softmax(1))
    assert model.predict_grades(out.logits).tolist() == proba.argmax(1).tolist()


def test_ordinal_cumulative_head_is_rank_consistent_coral():
    config = HfsslConfig(
        backbone="test_resnet", image_size=28, num_labels=5, problem_type="ordinal", ordinal_head="cumulative"
    )
    model = HfsslForImageClassification(config)
    labels = torch.tensor([0, 3, 4])
    out = model(torch.rand(3, 1, 28, 28), labels=labels)
    assert out.logits.shape == (3, 4)
    assert model.classifier.fc.out_features == 1  # one shared weight vector, K-1 biases
    targets = torch.tensor([[0.0, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]])
    expected = F.binary_cross_entropy_with_logits(out.logits, targets, reduction="none").sum(1).mean()
    assert torch.allclose(out.loss, expected)
    _backward_ok(model, out.loss)
    # per-grade probabilities from P(y > j): non-negative, sum to one, argmax = grade
    logits = torch.tensor([[3.0, 1.0, -1.0, -3.0], [-2.0, -2.5, -3.0, -4.0], [1.0, 2.0, 0.0, -1.0]])
    proba = model.predict_proba(logits)
    gt = torch.sigmoid(logits)
    assert torch.allclose(proba.sum(1), torch.ones(3))
    assert torch.allclose(proba[0], torch.cat([1 - gt[0, :1], gt[0, :-1] - gt[0, 1:], gt[0, -1:]]))
    assert (proba >= 0).all()  # the non-monotone row (1.0 < 2.0) is made monotone first
    assert model.predict_grades(logits).tolist() == proba.argmax(1).tolist()


def test_ordinal_heads_save_and_load(tmp_path):
    config = HfsslConfig(
        backbone="test_resnet", image_size=28, num_labels=5, problem_type="ordinal", ordinal_head="cumulative"
    )
    model = HfsslForImageClassification(config)
    model.save_pretrained(tmp_path)
    again = HfsslForImageClassification.from_pretrained(tmp_path)
    assert again.config.ordinal_head == "cumulative"
    x = torch.rand(2, 1, 28, 28)
    model.eval(), again.eval()
    assert torch.allclose(model(x).logits, again(x).logits)


@pytest.mark.parametrize("skips", [True, False])
@pytest.mark.parametrize(
    "kwargs, shape, labels",
    [
        # DRIVE-size RGB crops, binary vessel masks
        (dict(backbone="resnet18", in_chans=3, image_size=64, num_labels=1), (2, 3, 64, 64), "binary"),
        # 28^3 volumes; encoder widths cut 4x to keep the CPU test short (the decoder is unchanged)
        (
            dict(
                backbone="unet3d_encoder",
                spatial_dims=3,
                image_size=28,
                num_labels=3,
                backbone_kwargs={"channels": [16, 32, 64, 128]},
            ),
            (1, 1, 28, 28, 28),
            "multi",
        ),
    ],
)
def test_segmentation_forward_backward(kwargs, shape, labels, skips):
    config = HfsslConfig(decoder_skip_connections=skips, **kwargs)
    model = HfsslForSegmentation(config)
    x = torch.rand(*shape)
    if labels == "binary":
        y = (torch.rand(shape[0], *shape[2:]) > 0.8).long()
    else:
        y = torch.randint(0, config.num_labels, (shape[0], *shape[2:]))
    out = model(x, labels=y)
    assert out.logits.shape == (shape[0], config.num_labels, *shape[2:])
    first = model.decoder.blocks[0][0][0]
    deep, skip = config.feature_channels[-1], config.feature_channels[-2]
    assert first.in_channels == (deep + skip if skips else deep)
    _backward_ok(model, out.loss)


def test_segmentation_loss_decreases_with_training():
    """A few Adam steps on one fixed batch must fit it better (the loss and gradients are wired up)."""
    torch.manual_seed(0)
    model = HfsslForSegmentation(HfsslConfig(backbone="resnet18", in_chans=3, image_size=16, num_labels=1))
    x = torch.rand(2, 3, 16, 16)
    y = (x.mean(1) > 0.5).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss = model(x, labels=y).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_segmentation_vit_and_3d_resnet():
    vit = HfsslForSegmentation(
        HfsslConfig(
            backbone="vit_tiny_patch16_224", image_size=32, backbone_kwargs={"patch_size": 4}, num_labels=2
        )
    )
    assert vit(torch.rand(1, 1, 32, 32)).logits.shape == (1, 2, 32, 32)
    res3d = HfsslForSegmentation(
        HfsslConfig(backbone="resnet18_3d", spatial_dims=3, image_size=16, num_labels=1)
    )
    out = res3d(torch.rand(1, 1, 16, 16, 16), labels=torch.zeros(1, 16, 16, 16))
    assert out.logits.shape == (1, 1, 16, 16, 16) and torch.isfinite(out.loss)
