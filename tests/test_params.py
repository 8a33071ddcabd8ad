"""The paper's parameter table, reproduced exactly on the meta device (no weights downloaded)."""

import pytest

from tall_model import preset_config
from tall_model.params import meta_model, parameter_report


@pytest.mark.parametrize("preset, stages, trainable, total, share, positions", [
    ("paper-bloomz", (138_341_376, 4_203_520, 101_828_608, 559_214_592, 1_577_472, 19_176_448, 59_195_904),
     126_786_048, 883_537_920, 14.35, 1_310_720),
    ("paper-qwen", (138_341_376, 3_448_704, 83_598_080, 494_032_768, 1_446_400, 19_176_448, 59_195_904),
     107_669_632, 799_239_680, 13.47, 1_179_648),
])
def test_paper_parameter_counts(preset, stages, trainable, total, share, positions):
    r = parameter_report(meta_model(preset_config(preset)))
    assert (r.lr_hr_encoder, r.align_in, r.bridge_in, r.llm, r.align_out, r.bridge_out, r.hr_lr_decoder) == stages
    assert r.paper_trainable == trainable and r.total == total
    assert round(r.paper_share, 2) == share
    assert r.position_values == positions
    assert r.trainable == trainable - positions  # ours: the fixed tables are frozen
    text = str(r)
    assert f"{trainable:,}" in text and f"{trainable - positions:,}" in text and "position" in text
