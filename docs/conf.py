"""Sphinx configuration of the skhash documentation.

Build (warnings are errors, the gallery is executed; no network needed)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import os
import warnings

from threadpoolctl import threadpool_limits

import skhash

project = "skhash"
author = "The skhash developers"
copyright = "The skhash developers"  # noqa: A001 (Sphinx's name)
version = release = skhash.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
# Files whose name starts with "_" are included by other pages.
exclude_patterns = [
    "_build",
    "**/sg_execution_times.rst",
    "sg_execution_times.rst",
    "**/_*.rst",
]
default_role = "code"
# The build must not need the network: no intersphinx inventories.
intersphinx_mapping = {}

# API reference: one generated page per public name.
autosummary_generate = True
# Inherited methods are shown (fit, transform, get_params ...) except those of
# scikit-learn's private mixins, whose docstrings point into sklearn's own docs.
autodoc_default_options = {
    "members": True,
    "inherited-members": "object,_SetOutputMixin,_MetadataRequester",
}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# The gallery: examples/plot_*.py are executed at every build (CPU, seconds).
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "doc_module": ("skhash",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skhash": None},
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "show_memory": False,
    "min_reported_time": 1,
}

# The examples run in this process. On a small shared machine, BLAS and torch
# threads fighting over the cores make them several times slower: one BLAS
# thread (NumPy is already loaded, so threadpoolctl sets it) and one torch
# thread (read from the environment when the examples import torch).
os.environ.setdefault("OMP_NUM_THREADS", "1")
threadpool_limits(limits=int(os.environ["OMP_NUM_THREADS"]))
# Examples print nothing about the non-GUI backend.
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg")

html_theme = "pydata_sphinx_theme"
html_title = f"skhash {version}"
html_theme_options = {
    "navbar_align": "left",
    "header_links_before_dropdown": 8,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {
    page: [] for page in ["index", "install", "quick_start", "benchmarks", "changelog"]
}
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False


def _check_api_coverage():
    """Fail the build when a public name is missing from api.rst."""
    import importlib
    import re
    from pathlib import Path

    listed = set(
        re.findall(
            r"^\s+~?([\w.]+)\s*$", (Path(__file__).parent / "api.rst").read_text(), re.M
        )
    )
    listed = {name.rsplit(".", 1)[-1] for name in listed}
    missing = []
    for module in [
        "skhash",
        "skhash.codes",
        "skhash.classical",
        "skhash.deep",
        "skhash.neighbors",
        "skhash.metrics",
        "skhash.datasets",
        "skhash.utils",
        "skhash.base",
        "skhash.persistence",
        "skhash.onnx",
    ]:
        names = importlib.import_module(module).__all__
        missing += [
            f"{module}.{name}"
            for name in names
            if name != "__version__" and name not in listed
        ]
    if missing:
        raise RuntimeError(f"Public names missing from docs/api.rst: {missing}")


_check_api_coverage()
