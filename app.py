"""TALL in the browser: predict the next Hebrew word, compare approaches, train adapters on your corpus.

    python app.py [--host 127.0.0.1] [--port 7860] [--preset demo] [--device auto] [--dtype fp32]
    python app.py --preset paper-bloomz      # the paper's backbones, from the Hugging Face cache or local folders
    python app.py --auth user:password      # ask for a login first (a shared, public app)
    python app.py --auth-mode oauth         # on a Space with `hf_oauth: true`: Train only for signed-in HF users
    python app.py --preset paper-bloomz --quantize int8 --threads 2   # fastest on a dedicated 2-core CPU

`demo` (module level) is the Gradio app, ready for a Hugging Face Space (`app_file: app.py`). It is built by
`tall_app.blocks.build_app` (one module per tab in tall_app/), whose callbacks call the plain, unit-tested methods of
`tall_app.service.AppService`. The `demo` preset falls back to `tiny` (and says so) while checkpoints/demo/ is not
built.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the app never reaches a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from tall_app.blocks import build_app, launch  # noqa: E402
from tall_app.models import APP_PRESETS  # noqa: E402
from tall_app.service import AUTH_MODES  # noqa: E402
from tall_model.load import default_threads  # noqa: E402
from tall_model.quantize import QUANTIZE_MODES, check_mode  # noqa: E402
from tall_model.translate import ENGINES  # noqa: E402

__all__ = ["build_app", "demo", "launch", "main"]

demo = build_app()


def main(argv=None) -> None:
    global demo
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--preset", default=os.environ.get("TALL_APP_PRESET", "demo"), choices=APP_PRESETS,
                        help="demo (falls back to tiny while checkpoints/demo/ is not built), tiny, tiny-qwen, mid, "
                             "paper-bloomz, paper-qwen (when their backbones resolve; else the app says why)")
    parser.add_argument("--device", default=os.environ.get("TALL_APP_DEVICE", "auto"),
                        help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--dtype", default=os.environ.get("TALL_APP_DTYPE") or None,
                        help="of the frozen backbones: fp32 (default), bf16 or fp16 (on a GPU)")
    parser.add_argument("--translation-engine", default=os.environ.get("TALL_APP_TRANSLATION_ENGINE") or "transformers",
                        choices=ENGINES, help="what writes the he→en text: transformers (default) or ctranslate2 "
                        "(faster on the CPU, not bitwise the same text); also TALL_APP_TRANSLATION_ENGINE")
    parser.add_argument("--quantize", default=os.environ.get("TALL_APP_QUANTIZE") or "none", choices=QUANTIZE_MODES,
                        help="int8: frozen backbones (and CTranslate2) in int8 for CPU inference; faster, not exact; "
                             "training runs use unquantised backbones; also TALL_APP_QUANTIZE")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: 1 on a machine with at most 2 cores, else torch's default)")
    parser.add_argument("--auth", default=os.environ.get("TALL_APP_AUTH"), metavar="USER:PASSWORD",
                        help="ask for this login before the page opens (runs are then owned by the user, not the "
                             "browser session); also TALL_APP_AUTH")
    parser.add_argument("--auth-mode", default=os.environ.get("TALL_APP_AUTH_MODE") or "session", choices=AUTH_MODES,
                        help="session (default: anyone may train; a run belongs to the signed-in user, else the "
                             "browser session) or oauth (on a Space with Hugging Face OAuth: Start, Resume, Stop, "
                             "Download, Push and Private need a sign-in); also TALL_APP_AUTH_MODE")
    args = parser.parse_args(argv)
    auth = None
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not (sep and user and password):
            parser.error("--auth takes USER:PASSWORD")
        auth = (user, password)
    torch.set_num_threads(default_threads(args.threads))
    inference = {"translation_engine": args.translation_engine, "quantize": check_mode(args.quantize)}
    if (args.preset != demo.requested_preset or args.device != "auto" or args.dtype
            or args.auth_mode != demo.service.auth_mode or inference != demo.service.cache.inference):
        try:
            demo = build_app(args.preset, device=args.device, dtype=args.dtype, auth_mode=args.auth_mode, **inference)
        except ValueError as err:  # --device cuda without a GPU, an unknown dtype, oauth off a Space: one line
            parser.error(str(err))
    launch(demo, args.host, args.port, auth=auth)


if __name__ == "__main__":
    main()
