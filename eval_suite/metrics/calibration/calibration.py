"""Expected calibration error and reliability-diagram bins, as an ``evaluate`` module.

Load it offline by path: ``evaluate.load("/abs/path/eval_suite/metrics/calibration")``. Top-label
confidence in ``n_bins`` equal-width bins (Guo et al., 2017); the numbers come from
``eval_suite.metrics.reliability_diagram``.
"""

import evaluate

from eval_suite.metrics import infer_task_from_lists, reliability_diagram, score_features

_DESCRIPTION = """\
Expected calibration error (ECE): the sample-weighted mean gap between accuracy and mean
top-label confidence over equal-width confidence bins, with the bins of the reliability diagram.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: class probabilities per sample (a single positive-class probability for binary).
    references: class indices (0/1 lists per label for multilabel).
    task: "binary" | "multiclass" | "ordinal" | "multilabel" (default: inferred from the shapes).
    n_bins: number of equal-width confidence bins (default 15).
Returns:
    {"ece": float, "bins": {"lower", "upper", "count", "confidence", "accuracy"}}; empty bins are nan.
"""

_CITATION = """\
@inproceedings{guo2017calibration,
  title={On calibration of modern neural networks},
  author={Guo, Chuan and Pleiss, Geoff and Sun, Yu and Weinberger, Kilian Q},
  booktitle={ICML},
  year={2017}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Calibration(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=score_features(),
            reference_urls=["https://arxiv.org/abs/1706.04599"],
        )

    def _compute(self, predictions, references, task=None, n_bins=15):
        return reliability_diagram(
            references,
            predictions,
            task=task or infer_task_from_lists(predictions, references),
            n_bins=n_bins,
        )
