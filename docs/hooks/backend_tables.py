"""MkDocs hook: list each capability's built-in backends from the plugin registry itself.

A page holds a marker such as ``<!-- backends: sentiment -->``; at build time it becomes a table
of every backend that a plugin shipped *with hypotez* registers for that capability (name, plugin,
what it is, whether it is picked when nothing is named; for storages, the URL scheme), linking each to its page under
``docs/backends/`` when that page exists. Third-party plugins installed in the build environment
are left out: the table documents hypotez, not the machine that built the site.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: The marker on a line of its own (a mention of it inside text or code is left alone).
MARKER = re.compile(r"^<!-- backends: (\w+) -->$", re.MULTILINE)
DISTRIBUTION = "hypotez"


def page_for(plugin: str, backend: str, docs_dir: Path) -> str | None:
    """The backend's page relative to ``docs_dir``, if one exists."""
    for stem in (plugin, f"hypotez_{plugin}", backend):
        candidate = Path("backends") / f"{stem}.md"
        if (docs_dir / candidate).is_file():
            return candidate.as_posix()
    return None


def render_table(capability: str, docs_dir: Path, page_dir: str = "") -> str:
    from hypotez import make_plugin_manager

    # A manager of its own, built from the entry points alone: no allow- or block-list from
    # the environment of whoever builds the site.
    pm = make_plugin_manager(env={})
    regs = [
        reg
        for reg in pm.registry.registrations(capability).values()
        if pm.infos[reg.plugin].distribution == DISTRIBUTION
    ]
    if not regs:
        return f"*No built-in {capability} backend is registered yet.*"
    last = "Chosen for" if capability == "storage" else "Default order"
    rows = [f"| Backend | Plugin | What it is | {last} |", "| --- | --- | --- | --- |"]
    for reg in sorted(regs, key=lambda r: (-r.priority, r.name)):
        page = page_for(reg.plugin, reg.name, docs_dir)
        up = "../" * page_dir.count("/") if page_dir else ""
        name = f"[`{reg.name}`]({up}{page})" if page else f"`{reg.name}`"
        if capability == "storage":  # chosen by the URL's scheme, never by priority
            order = f"`{reg.name}://` URLs"
        else:
            order = f"priority {reg.priority}" + (", when available" if reg.available else "")
        rows.append(f"| {name} | `{reg.plugin}` | {reg.description or '—'} | {order} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, config: Any, **kwargs: Any) -> str:
    if "<!-- backends:" not in markdown:
        return markdown
    docs_dir = Path(config["docs_dir"])
    page_dir = page.file.src_uri.rpartition("/")[0] + "/" if "/" in page.file.src_uri else ""
    return MARKER.sub(lambda m: render_table(m.group(1), docs_dir, page_dir), markdown)
