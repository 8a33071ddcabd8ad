"""HTML and table formatting for the app. Every user or model string is HTML-escaped; Hebrew is set
right to left with `dir="rtl"` and isolated (`<bdi>`) where it sits inside left-to-right text."""

from __future__ import annotations

import html

from .figures import clean_token, is_hebrew

_BOX = ("flex:1 1 0; min-width:150px; border:1px solid #d0d7e2; border-radius:10px; padding:10px 12px; "
        "background:#f7f9fc; color:#1f2733")
_CAPTION = "font-size:0.78em; text-transform:uppercase; letter-spacing:0.04em; color:#5c6675; margin-bottom:4px"
_ARROW = "align-self:center; font-size:1.6em; color:#8a94a6; padding:0 4px"


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def _dir(text: str) -> str:
    return "rtl" if is_hebrew(text) else "ltr"


def word_html(word: str, prob: float | None = None) -> str:
    """The predicted word, big, right to left."""
    if not word:
        body = '<span style="color:#8a94a6">(no word)</span>'
    else:
        body = f'<bdi dir="rtl" lang="he">{esc(word)}</bdi>'
    extra = (f'<div style="font-size:0.95rem; color:#5c6675">probability of this word (its pieces): '
             f'{prob:.2%}</div>' if prob is not None and word else "")
    return (f'<div class="tall-word" style="text-align:center; padding:6px 0">'
            f'<div style="font-size:3.2rem; font-weight:700; line-height:1.2; color:#1f2733" dir="rtl">{body}</div>'
            f'{extra}</div>')


def _box(caption: str, body: str, direction: str = "ltr", big: bool = False, elem: str = "") -> str:
    size = "font-size:1.6em; font-weight:700;" if big else "font-size:1.05em;"
    return (f'<div class="tall-stage {elem}" style="{_BOX}"><div style="{_CAPTION}">{esc(caption)}</div>'
            f'<div dir="{direction}" style="{size} text-align:{"right" if direction == "rtl" else "left"}; '
            f'word-break:break-word">{body}</div></div>')


def pipeline_html(pred) -> str:
    """Hebrew input → English translation → what the LLM would say next in English → predicted Hebrew word."""
    llm = ", ".join(f'<bdi>“{esc(clean_token(tok).replace("·", " ").strip() or tok)}”</bdi> '
                    f'<span style="color:#5c6675">{p:.1%}</span>' for tok, p in pred.llm_next[:3]) or "—"
    arrow = f'<div style="{_ARROW}">→</div>'
    parts = [
        _box("Hebrew input" + (" (cut from the left)" if pred.truncated else ""),
             f'<span lang="he">{esc(pred.prefix_used)}</span>', "rtl", elem="tall-input"),
        _box("English translation (he→en)", esc(pred.translation) or "—", _dir(pred.translation or "a"),
             elem="tall-translation"),
        _box("LLM would say next (English)", llm, "ltr", elem="tall-llm"),
        _box("Predicted Hebrew word", f'<span lang="he">{esc(pred.word)}</span>' if pred.word else "(none)",
             "rtl", big=True, elem="tall-predicted"),
    ]
    return (f'<div class="tall-strip" style="display:flex; flex-wrap:wrap; gap:6px; align-items:stretch">'
            f'{arrow.join(parts)}</div>')


def pieces_rows(pieces) -> list[list]:
    """[piece, token id, probability] per chosen piece, for a Dataframe."""
    return [[p.piece, int(p.token_id), round(float(p.prob), 6)] for p in pieces]


PIECE_HEADERS = ["piece", "token id", "probability"]


def status_html(message: str, kind: str = "info") -> str:
    colors = {"info": ("#eef4ff", "#2d5bd7"), "ok": ("#ecf8f0", "#1f7a3d"), "warn": ("#fff7e6", "#a15c00"),
              "error": ("#fdecec", "#b42318")}
    bg, fg = colors.get(kind, colors["info"])
    return (f'<div class="tall-status tall-status-{kind}" style="background:{bg}; color:{fg}; '
            f'border-left:4px solid {fg}; padding:8px 12px; border-radius:6px">{esc(message)}</div>')


def report_markdown(report) -> str:
    """The corpus ingestion report (tall_data.corpus.IngestReport) as Markdown."""
    lines = [f"**{esc(report.source)}**: {report.records} record(s) read, {report.read} sentence(s) found, "
             f"**{report.kept} kept**, {sum(report.dropped.values())} dropped."]
    for reason, n in report.dropped.items():
        if n:
            lines.append(f"- dropped, {esc(report.reason_text(reason))}: {n}")
    lines.append(f"- niqqud/cantillation stripped: {'yes' if report.strip_marks else 'no'}")
    return "\n".join(lines)
