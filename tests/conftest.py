import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

# Tiny models run fastest on one thread, and the suite must not fight other processes for 2 cores.
torch.set_num_threads(1)

HEBREW_PREFIX = "בראשית ברא אלהים את השמים ואת"


@pytest.fixture(scope="session")
def tiny_config():
    from tall_model import preset_config

    return preset_config("tiny").changed({"decoding": {"translation_max_new_tokens": 12}})


@pytest.fixture(scope="session")
def tiny_model(tiny_config):
    from tall_model import load

    return load(tiny_config)
