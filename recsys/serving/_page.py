"""The transparency page: plain HTML built in Python, every value escaped.

A user sees their recommendations, each with a "Why am I seeing this?"
disclosure (the explanation sentence and the history items behind it), whether
the list is personalised, and a button that turns personalisation off or on. No
JavaScript and no front-end build. With authentication the page shows the
signed-in user only; without it (``insecure_local``) a lookup form asks for an id.
The personalisation form carries a CSRF token (:class:`~recsys.serving._web.FormGuard`).
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from recsys.serving._schemas import (
    ConsentOut,
    ModelInfo,
    Recommendations,
    RecommendedItem,
)
from recsys.serving._web import CSRF_FIELD, csp_hash

__all__ = ["page_csp", "page_path", "render_error", "render_page"]

PAGE = "/transparency"
FORM = "/transparency/personalisation"

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.45; color: #1b1b1b; }
.model, .note { color: #555; font-size: 0.9rem; }
.label { font-weight: 600; }
ol#recommendations li { margin: 0.6rem 0; }
details.why { margin: 0.2rem 0 0 0.5rem; }
.error { color: #a00000; }
"""


def page_csp() -> str:
    """The page's Content-Security-Policy: nothing but its own inline style, forms to itself, no framing.

    >>> page_csp().startswith("default-src 'none'; style-src 'sha256-")
    True
    """
    return (f"default-src 'none'; style-src {csp_hash(_STYLE)}; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")


def page_path(user_id: str) -> str:
    """The page URL of ``user_id`` (id percent-encoded).

    >>> page_path("a b/1")
    '/transparency?user_id=a%20b%2F1'
    """
    return f"{PAGE}?user_id={quote(user_id, safe='')}"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _document(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _lookup_form(user_id: str | None) -> str:
    value = "" if user_id is None else _e(user_id)
    return (
        f'<form method="get" action="{PAGE}" id="lookup">'
        '<label for="user_id">Your user id </label>'
        f'<input id="user_id" name="user_id" value="{value}" required maxlength="128"> '
        '<button type="submit" id="show">Show my recommendations</button></form>'
    )


def _model_line(model: ModelInfo) -> str:
    version = "" if model.version is None else f" version {model.version}"
    return (
        f'<p class="model" id="model">Model {_e(model.name)}{_e(version)}; '
        f"fairness and quality gate: {_e(model.gate.summary or model.gate.result)}</p>"
    )


def _consent_section(user_id: str, consent: ConsentOut, csrf_token: str) -> str:
    on = consent.personalisation
    since = "" if consent.updated_at is None else f" (set {consent.updated_at:%Y-%m-%d %H:%M} UTC)"
    state = "on" if on else "off"
    default = "" if consent.explicit else " (the default)"
    return (
        '<section id="personalisation">'
        f'<p id="personalisation-state" data-personalisation="{state}">'
        f"Personalisation is <strong>{state}</strong>{_e(default)}{_e(since)}. "
        + (
            "Your recommendations are ranked using what you watched."
            if on
            else "Your history is not used to rank your recommendations."
        )
        + "</p>"
        + (f'<p id="withdrawn-categories">Left out of your recommendations (categories you withdrew): '
           f'{_e(", ".join(consent.withdrawn_categories))}.</p>' if consent.withdrawn_categories else "")
        + f'<form method="post" action="{FORM}">'
        f'<input type="hidden" name="user_id" value="{_e(user_id)}">'
        f'<input type="hidden" name="{CSRF_FIELD}" value="{_e(csrf_token)}">'
        f'<input type="hidden" name="personalisation" value="{"off" if on else "on"}">'
        f'<button type="submit" id="toggle-personalisation">'
        f'Turn personalisation {"off" if on else "on"}</button></form></section>'
    )


def _item(item: RecommendedItem) -> str:
    expl = item.explanation
    title = item.title or item.item_id
    parts = [
        f'<li class="item" data-item-id="{_e(item.item_id)}" data-reason="{_e(item.reason)}">',
        f'<span class="title">{_e(title)}</span>',
    ]
    if expl is not None:
        parts.append('<details class="why"><summary>Why am I seeing this?</summary>')
        parts.append(f'<p class="why-text">{_e(expl.text)}</p>')
        if expl.reasons:
            parts.append('<ul class="reasons">')
            for r in expl.reasons:
                parts.append(
                    f'<li class="reason" data-item-id="{_e(r.item_id)}" data-weight="{r.weight:.6g}">'
                    f"{_e(r.title)} <span class=\"weight\">(weight {r.weight:.3f})</span></li>"
                )
            parts.append("</ul>")
        if expl.popularity is not None:
            parts.append(f'<p class="popularity">Chosen by {expl.popularity} people in the training data.</p>')
        if expl.note:
            parts.append(f'<p class="note">{_e(expl.note)}</p>')
        parts.append("</details>")
    parts.append("</li>")
    return "".join(parts)


def render_page(
    *,
    model: ModelInfo,
    user_id: str | None,
    recommendations: Recommendations | None,
    consent: ConsentOut | None,
    csrf_token: str = "",
    lookup: bool = True,
) -> str:
    """The page for ``user_id`` (or the bare lookup form when it is None).

    ``csrf_token`` goes into the personalisation form; ``lookup`` adds the form
    that asks for a user id (only when the service runs without authentication).
    """
    body = ["<h1>Your recommendations</h1>", _model_line(model)]
    if lookup:
        body.append(_lookup_form(user_id))
    if user_id is not None and recommendations is not None and consent is not None:
        body.append(_consent_section(user_id, consent, csrf_token))
        body.append(
            f'<p class="label" id="list-label" data-basis="{_e(recommendations.basis)}" '
            f'data-personalised="{"true" if recommendations.personalised else "false"}">'
            f"{_e(recommendations.label)}</p>"
        )
        body.append('<ol id="recommendations">')
        body.extend(_item(item) for item in recommendations.items)
        body.append("</ol>")
    return _document("Your recommendations", "\n".join(body))


def render_error(message: str, *, user_id: str | None = None, lookup: bool = True) -> str:
    """A page that says what was wrong with the request."""
    body = [
        "<h1>Your recommendations</h1>",
        f'<p class="error" id="error">{_e(message)}</p>',
    ]
    if lookup:
        body.append(_lookup_form(user_id))
    return _document("Request not understood", "\n".join(body))
