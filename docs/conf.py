"""Sphinx configuration for the crmkit user guide (MyST Markdown, furo theme)."""

from __future__ import annotations

project = "crmkit"
author = "crmkit developers"
copyright = "2026, crmkit developers"
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "furo"
myst_heading_anchors = 3
autodoc_member_order = "bysource"
