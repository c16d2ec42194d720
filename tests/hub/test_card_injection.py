"""Names that reach the model card (dataset, task and metric names from records, the pretraining
dataset) holding quotes, newlines, ``---`` or markup cannot break its YAML front matter."""

from __future__ import annotations

import yaml
from huggingface_hub import EvalResult, ModelCard

from hfssl import HfsslConfig, HfsslModel
from hfssl.hub import cards

HOSTILE = "x'\"\n---\nevil: true\n<script>alert(1)</script>: #"


def test_hostile_names_keep_the_front_matter_intact(tmp_path):
    folder = tmp_path / "backbone"
    config = HfsslConfig(backbone="test_resnet", in_chans=1, image_size=28, pretrain_dataset=HOSTILE)
    HfsslModel(config).save_pretrained(folder)
    result = EvalResult(
        task_type="image-classification",
        task_name=f"linear{HOSTILE}",
        dataset_type=f"ds{HOSTILE}",
        dataset_name=f"DS{HOSTILE}",
        dataset_split="test",
        metric_type=f"metric{HOSTILE}",
        metric_value=0.5,
    )
    card = cards.render_card(folder, repo_id="org/hostile", eval_results=[result])
    text = str(card)
    assert text.startswith("---\n")
    header = text.split("\n---\n", 1)[0][4:]
    meta = yaml.safe_load(header)
    assert "evil" not in meta  # the payload's key did not become a field
    parsed = ModelCard(text).data.to_dict()
    assert "evil" not in parsed
    assert parsed["datasets"] == [HOSTILE, f"ds{HOSTILE}"] and meta["datasets"] == parsed["datasets"]
    names = [r.dataset_type for r in ModelCard(text).data.eval_results or []]
    assert names == [f"ds{HOSTILE}"]  # the name survives exactly
