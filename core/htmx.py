"""HTMX helpers: one template source for a page and the partial it returns."""

from flask import make_response, render_template, request


def is_htmx() -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def render(page_template: str, partial_template: str, status: int = 200, trigger: str | None = None, **context):
    """Render the partial for HTMX requests and the full page otherwise."""
    return fragment(partial_template if is_htmx() else page_template, status, trigger, **context)


def fragment(template: str, status: int = 200, trigger: str | None = None, **context):
    """Render one template; the answer varies on HX-Request, since the same URL also serves pages
    or redirects, and a cache must not hand one to the other."""
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    if trigger:
        response.headers["HX-Trigger"] = trigger
    return response


def hx_redirect(url: str):
    response = make_response("", 204)
    response.headers["HX-Redirect"] = url
    return response
