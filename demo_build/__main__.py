"""`python -m demo_build`: see demo_build/build.py."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: the build never reaches the hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from demo_build.build import main  # noqa: E402  (after the environment above)

main()
