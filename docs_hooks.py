"""mkdocs hooks (see ``hooks:`` in mkdocs.yml).

The docstrings use Sphinx roles (``:class:`EpisodeIndex```), which mkdocstrings' Google-style parser
leaves as text: ``:class:<code>EpisodeIndex</code>``. Render them as plain code.
"""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:py:)?(?:meth|class|attr|func|mod|data|exc|obj|const):(?=<code>)")


def on_page_content(html: str, **kwargs) -> str:
    return _ROLE.sub("", html)
