import os
import zlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Derandomized by default, so a failure in CI replays on any machine;
# `HYPOTHESIS_PROFILE=explore` draws new examples.
settings.register_profile("replay", derandomize=True, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "replay"))


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


@pytest.fixture
def rng(request):
    """A fresh generator per test, seeded from the test's name."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
