"""Classification metrics for imbalanced (medical) data, as an ``evaluate`` module.

Load it offline by path: ``evaluate.load("/abs/path/eval_suite/metrics/imbalanced_classification")``
(or ``eval_suite.metrics.load_metric("imbalanced_classification")``). The numbers come from
``eval_suite.metrics.compute_classification_metrics`` (scikit-learn underneath).
"""

import evaluate

from eval_suite.metrics import compute_classification_metrics, infer_task_from_lists, score_features

_DESCRIPTION = """\
Metrics for class-imbalanced classification: accuracy, balanced accuracy, macro F1, ROC AUC
(binary or macro one-vs-rest), minority-class recall, G-mean, Matthews correlation, quadratic
weighted kappa (ordinal only), expected calibration error, per-class precision/recall/F1/support
and, for multi-class long-tail data, many/medium/few-shot group accuracy.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: class probabilities, one list of C floats per sample; for binary also a single
        positive-class probability, for ordinal also a single regressed grade.
    references: class indices (a list of 0/1 per label for multilabel).
    task: "binary" | "multiclass" | "ordinal" | "multilabel" (default: inferred from the shapes).
    train_class_counts: training samples per class (minority class, shot groups).
    metrics: names to compute (default: all that apply to the task).
    num_classes, n_bins, many_threshold, few_threshold: see compute_classification_metrics.
Returns:
    dict of floats, plus "per_class" (lists) and "group_accuracy" (dict).
Examples:
    >>> metric = evaluate.load(path_to_this_folder)
    >>> metric.compute(predictions=[[0.9, 0.1], [0.2, 0.8]], references=[0, 1], task="binary")["accuracy"]
    1.0
"""

_CITATION = """\
@article{zhang2023dive,
  title={Dive into the details of self-supervised learning for medical image analysis},
  author={Zhang, Chuyan and Zheng, Hao and Gu, Yun},
  journal={Medical Image Analysis},
  year={2023}
}
@article{pedregosa2011scikit,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and others},
  journal={Journal of Machine Learning Research},
  volume={12}, pages={2825--2830}, year={2011}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ImbalancedClassification(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=score_features(),
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html"],
        )

    def _compute(
        self,
        predictions,
        references,
        task=None,
        train_class_counts=None,
        metrics=None,
        num_classes=None,
        n_bins=15,
        many_threshold=100,
        few_threshold=20,
    ):
        return compute_classification_metrics(
            references,
            predictions,
            task=task or infer_task_from_lists(predictions, references),
            train_class_counts=train_class_counts,
            metrics=metrics,
            num_classes=num_classes,
            n_bins=n_bins,
            many_threshold=many_threshold,
            few_threshold=few_threshold,
        )
