"""Many/medium/few-shot group accuracy for long-tailed multi-class data, as an ``evaluate`` module.

Load it offline by path: ``evaluate.load("/abs/path/eval_suite/metrics/long_tail")``. Classes are
grouped by their number of *training* samples (many > 100, medium 20-100, few < 20 by default,
configurable); a group's accuracy is the mean recall of its classes (as in OLTR's ``shot_acc``).
"""

import datasets
import evaluate
import numpy as np

from eval_suite.metrics import compute_classification_metrics, shot_groups

_DESCRIPTION = """\
Long-tail group accuracy: mean per-class recall over the classes with many (> many_threshold),
medium, and few (< few_threshold) training samples. Empty groups are nan.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted class indices, or class probabilities (one list per sample).
    references: class indices.
    train_class_counts: training samples per class (required).
    many_threshold: a class is "many" above this count (default 100).
    few_threshold: a class is "few" below this count (default 20).
Returns:
    {"many": float, "medium": float, "few": float, "groups": {"many": [class indices], ...}}
"""

_CITATION = """\
@inproceedings{liu2019large,
  title={Large-scale long-tailed recognition in an open world},
  author={Liu, Ziwei and Miao, Zhongqi and Zhan, Xiaohang and Wang, Jiayun and Gong, Boqing and Yu, Stella X},
  booktitle={CVPR},
  year={2019}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LongTail(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Sequence(datasets.Value("float64")),
                        "references": datasets.Value("int64"),
                    }
                ),
                datasets.Features(
                    {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
                ),
            ],
            reference_urls=["https://arxiv.org/abs/1904.05160"],
        )

    def _compute(
        self, predictions, references, train_class_counts=None, many_threshold=100, few_threshold=20
    ):
        if train_class_counts is None:
            raise ValueError("long_tail needs train_class_counts (training samples per class)")
        scores = np.asarray(predictions, dtype=np.float64)
        if scores.ndim == 1:  # predicted labels: one-hot "probabilities" give the same recalls
            labels = scores.astype(np.int64)
            if labels.size and (labels.min() < 0 or labels.max() >= len(train_class_counts)):
                raise ValueError(f"predicted labels must lie in 0..{len(train_class_counts) - 1}")
            scores = np.eye(len(train_class_counts))[labels]
        result = compute_classification_metrics(
            references,
            scores,
            task="multiclass",
            train_class_counts=train_class_counts,
            metrics=["group_accuracy"],
            many_threshold=many_threshold,
            few_threshold=few_threshold,
        )["group_accuracy"]
        return {**result, "groups": shot_groups(train_class_counts, many_threshold, few_threshold)}
