"""Binary segmentation metrics inside an optional field-of-view mask, as an ``evaluate`` module.

Load it offline by path: ``evaluate.load("/abs/path/eval_suite/metrics/segmentation")``. All pixels
of all images are pooled (one confusion matrix), as in the DRIVE protocol; the numbers come from
``eval_suite.metrics.compute_segmentation_metrics``.
"""

import datasets
import evaluate
import numpy as np

from eval_suite.metrics import compute_segmentation_metrics

_DESCRIPTION = """\
Pixel-wise Dice, IoU (Jaccard), sensitivity, specificity and accuracy of binary masks, counted only
inside the field-of-view (FOV) masks when given.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted masks, one per image: 2-D (H, W) or 3-D (D, H, W) nested lists/arrays of
        0/1 (or flattened 1-D masks); images may differ in size.
    references: ground-truth masks of the same shapes.
    fov: optional list of FOV masks of the same shapes (non-zero = counted).
Returns:
    {"dice", "iou", "sensitivity", "specificity", "accuracy"}; a 0/0 ratio is nan.
"""

_CITATION = """\
@article{staal2004drive,
  title={Ridge-based vessel segmentation in color images of the retina},
  author={Staal, Joes and Abramoff, Michael D and Niemeijer, Meindert and Viergever, Max A and van Ginneken, Bram},
  journal={IEEE Transactions on Medical Imaging},
  volume={23}, number={4}, pages={501--509}, year={2004}
}
"""


def _masks(ndim: int) -> datasets.Features:
    feature = datasets.Value("uint8")
    for _ in range(ndim):
        feature = datasets.Sequence(feature)
    return datasets.Features({"predictions": feature, "references": feature})


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Segmentation(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[_masks(2), _masks(3), _masks(1)],
            reference_urls=["https://en.wikipedia.org/wiki/S%C3%B8rensen%E2%80%93Dice_coefficient"],
        )

    def _compute(self, predictions, references, fov=None):
        # Images may differ in size: pool them flattened (the metrics are per-pixel).
        pred = np.concatenate([np.asarray(p).reshape(-1) for p in predictions])
        target = np.concatenate([np.asarray(t).reshape(-1) for t in references])
        mask = None if fov is None else np.concatenate([np.asarray(f).reshape(-1) for f in fov])
        return compute_segmentation_metrics(pred, target, mask)
