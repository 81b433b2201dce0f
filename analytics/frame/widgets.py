"""Widgets bound to a page's declared URL parameters: they show labels and write values.

A page draws its own parameters (declared in :mod:`analytics.frame.pages`) with these helpers, so
the widget, the URL and the page context always agree: the frame has already validated the URL and
put the value in the widget's state; a change writes the value (never the label) back to the URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from analytics.frame.session import PageContext, write_param_from_widget


def _bound(ctx: PageContext, name: str) -> tuple[Any, list[str], Callable[[str], str]]:
    param = ctx.page.param(name)
    labels = dict(ctx.choices.get(name, {}))
    return param, list(labels), lambda value: labels.get(value, value)


def selectbox(ctx: PageContext, name: str, container: Any = st, placeholder: str | None = None, **kw: Any) -> Any:
    """A select box over the parameter's allowed values (empty when it has no default)."""
    param, options, label = _bound(ctx, name)
    return container.selectbox(param.label, options, format_func=label, key=param.widget_key,
                               on_change=write_param_from_widget, args=(param,),
                               placeholder=placeholder or f"Choose a {param.label.lower()}", **kw)


def multiselect(ctx: PageContext, name: str, container: Any = st, **kw: Any) -> tuple[str, ...]:
    param, options, label = _bound(ctx, name)
    chosen = container.multiselect(param.label, options, format_func=label, key=param.widget_key,
                                   on_change=write_param_from_widget, args=(param,), **kw)
    return tuple(chosen)


def segmented(ctx: PageContext, name: str, container: Any = st, **kw: Any) -> Any:
    """A segmented control; deselecting falls back to the parameter's default."""
    param, options, label = _bound(ctx, name)
    value = container.segmented_control(param.label, options, format_func=label, key=param.widget_key,
                                        on_change=write_param_from_widget, args=(param,), **kw)
    return value if value is not None else param.default


def select_slider(ctx: PageContext, name: str, container: Any = st, **kw: Any) -> Any:
    param, options, label = _bound(ctx, name)
    return container.select_slider(param.label, options, format_func=label, key=param.widget_key,
                                   on_change=write_param_from_widget, args=(param,), **kw)


def text_input(ctx: PageContext, name: str, container: Any = st, **kw: Any) -> str | None:
    """A free-text input bound to a ``text`` parameter (empty text removes it from the URL)."""
    param = ctx.page.param(name)
    value = container.text_input(param.label, key=param.widget_key, on_change=write_param_from_widget, args=(param,),
                                 **kw)
    return value.strip() or None if isinstance(value, str) else None
