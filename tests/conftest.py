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


# Property-based tests (tests/test_fuzz.py). "ci" is short and seeded (tests/test_fuzz.py applies a fixed @seed
# under it), so a CI run is the same every time; it replays the committed example database (tests/hypothesis-db,
# read-only here) so every input that ever broke ingestion is tried again. "long" is the benchmark (python -m benchmarks.fuzz): 10,000 random examples per target,
# saving any new failure into that database to be committed with its fix.
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis.database import DirectoryBasedExampleDatabase, ReadOnlyDatabase  # noqa: E402


class _KeepingDatabase(DirectoryBasedExampleDatabase):
    """Never forgets: hypothesis deletes an example once it stops failing, but a fixed bug's input is exactly what
    CI should keep replaying."""

    def delete(self, key: bytes, value: bytes) -> None:
        pass


_FUZZ_DB = _KeepingDatabase(os.path.join(os.path.dirname(__file__), "hypothesis-db"))
settings.register_profile("ci", max_examples=100, deadline=None,
                          database=ReadOnlyDatabase(_FUZZ_DB), suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=int(os.environ.get("TALL_FUZZ_EXAMPLES", 10_000)), deadline=None, database=_FUZZ_DB,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("ci")


@pytest.fixture(scope="session")
def verses() -> list[str]:
    """Twelve Genesis verses: the training tests' corpus."""
    from tall_model.tiny import bible_lines

    return bible_lines(60)[0][:12]


@pytest.fixture(scope="session")
def backbones():
    """The tiny preset's frozen backbones, loaded once for the training tests."""
    from tall_model import preset_config
    from tall_model.backbones import load_backbones

    return load_backbones(preset_config("tiny"))
