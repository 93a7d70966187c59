"""Sphinx configuration. Build with ``sphinx-build -W -b html docs docs/_build/html``."""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(REPO))

# The gallery executes every examples/plot_*.py; a few epochs per fit keep the build to a few
# minutes on a laptop. Export SKEMBEDREC_EXAMPLE_EPOCHS before building for longer runs.
os.environ.setdefault("SKEMBEDREC_EXAMPLE_EPOCHS", "3")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import skembedrec  # noqa: E402

project = "skembedrec"
author = "skembedrec developers"
copyright = "skembedrec developers"
release = skembedrec.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]

# Every cross-reference must resolve: a dead link fails the -W build. The build is offline
# (no intersphinx inventories to download), so references to other projects cannot resolve;
# they are listed here, one pattern per project, and render as plain code.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"sklearn(\..*)?"),      # scikit-learn: estimators, splitters, metrics, Bunch
    (r"py:.*", r"numpy(\..*)?"),        # numpy.random.RandomState
    (r"py:.*", r"scipy(\..*)?"),        # scipy.stats.loguniform, scipy.sparse
    (r"py:.*", r"pandas(\..*)?"),       # DataFrame in docstrings
    (r"py:.*", r"joblib(\..*)?"),       # joblib, the persistence alternative
    (r"py:mod", r"pickle"),             # the standard library module (no inventory either)
    # Fitted attributes (``history_``, ``encoder_``, ...) are documented in the estimator's
    # numpydoc "Attributes" list, which creates no link targets.
    (r"py:attr", r"skembedrec\.EmbeddingRatingRegressor\.\w+_"),
    # Private modules (architecture.rst names them) are not part of the API reference.
    (r"py:.*", r"skembedrec\._\w+(\..*)?"),
]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
default_role = "literal"

autosummary_generate = True
autodoc_default_options = {"members": True}
autodoc_typehints = "none"  # numpydoc sections already state the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

sphinx_gallery_conf = {
    "examples_dirs": str(REPO / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "within_subsection_order": "FileNameSortKey",
}

html_theme = "pydata_sphinx_theme"
html_title = f"skembedrec {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": False,
}
html_static_path: list[str] = []


BENCHMARK_RESULTS = REPO / "benchmarks" / "RESULTS.md"
BENCHMARK_PLOT = REPO / "benchmarks" / "movielens_rmse_vs_fit_time.png"


def _benchmark_section() -> str:
    """reST for whatever the benchmark has produced so far; never a missing-file warning."""
    parts = []
    if BENCHMARK_PLOT.is_file():
        parts.append(
            ".. figure:: ../benchmarks/movielens_rmse_vs_fit_time.png\n"
            "   :width: 90%\n\n"
            "   Held-out RMSE against fit time on MovieLens 100K "
            "(``benchmarks/movielens_rmse_vs_fit_time.png``).\n"
        )
    else:
        parts.append(".. note::\n\n   The plot ``benchmarks/movielens_rmse_vs_fit_time.png`` "
                     "has not been produced in this checkout.\n")
    if BENCHMARK_RESULTS.is_file():
        parts.append(
            "The full results file, ``benchmarks/RESULTS.md``, as produced by the "
            "benchmark:\n\n"
            ".. literalinclude:: ../benchmarks/RESULTS.md\n"
            "   :language: markdown\n"
        )
    else:
        parts.append(".. note::\n\n   ``benchmarks/RESULTS.md`` has not been produced in this "
                     "checkout.\n")
    return "\n".join(parts)


def _inject_benchmarks(app, docname, source):
    if docname == "benchmarks":
        source[0] = source[0].replace(".. benchmark-results-here", _benchmark_section())


def setup(app):
    app.connect("source-read", _inject_benchmarks)
    # The results file and plot live outside the source tree, so Sphinx cannot see them
    # change: re-read the (small) page on every build.
    app.connect("env-get-outdated", lambda *args: ["benchmarks"])
