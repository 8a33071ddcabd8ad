"""What the Gradio tabs share: the page's title and CSS, turning a user error into a message box, the checkpoint
selector's refresh, and the Predict tab's model and decoding controls (Compare and Train read them too).

Only this module and the tab modules (`tab_predict`, `tab_compare`, `tab_train`, `blocks`) import Gradio; every
callback calls a plain method of `service.AppService`.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .owners import owner_key
from .paths import public_message
from .service import AppService

TITLE = "TALL — next Hebrew word"
CSS = """
#prefix textarea, #compare-prefix textarea { font-size: 1.35rem; line-height: 1.6; }
.tall-word bdi { font-family: 'Noto Sans Hebrew', 'DejaVu Sans', sans-serif; }
"""
USER_ERRORS = (ValueError, RuntimeError, OSError)  # shown to the user; anything else is a bug and goes to the log
ERROR_SECONDS = 20


def user_message(err: Exception, svc: AppService) -> str:
    """The text of a user error for the browser: checkpoints named relative to checkpoints/, no server path."""
    return public_message(str(err) or type(err).__name__, svc.root)


def user_error(err: Exception, svc: AppService) -> gr.Error:
    """A message box for a user error (bad input, a checkpoint for other backbones, a reserved run name …)."""
    return gr.Error(user_message(err, svc), duration=ERROR_SECONDS)


def visitor(request: gr.Request | None, profile: gr.OAuthProfile | None = None) -> str | None:
    """Who is asking (owners.owner_key): the Hugging Face user signed in with the login button (OAuth, on a Space),
    else the --auth user, else the browser session; None outside a request (a local call)."""
    if request is None and profile is None:
        return None
    return owner_key(getattr(request, "username", None), getattr(request, "session_hash", None),
                     hf_user=getattr(profile, "username", None))


def checkpoint_dropdown(svc: AppService, current: str | None, owner: str | None = None) -> gr.Dropdown:
    """The checkpoint selector with the checkpoints found now (`owner`'s private runs included), keeping `current`
    when it is still there."""
    choices = svc.checkpoint_choices(owner)
    values = [value for _, value in choices]
    return gr.Dropdown(choices=choices, value=current if current in values else values[0])


@dataclass
class ModelControls:
    """The Predict tab's model and decoding controls."""

    preset: gr.Dropdown
    checkpoint: gr.Dropdown
    mode: gr.Radio
    temperature: gr.Slider
    top_k: gr.Slider
    top_p: gr.Slider
    seed: gr.Number

    def model_and_decoding(self) -> list:
        """The inputs `AppService.predict` and `AppService.compare` take after the prefix, in their order."""
        return [self.preset, self.checkpoint, self.mode, self.temperature, self.top_k, self.top_p, self.seed]
