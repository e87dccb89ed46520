"""Inside DeepSeek-R1: the library behind the course notebooks.

One module per idea; import the one you need, e.g. ``from course_lib import runtime``.
Importing the package does nothing else (no downloads, no plotting, no seeding).
"""

__version__ = "0.1.0"

# Where the course lives: the notebooks' Colab badges open REPO at REF, and their install cells (the
# second cell of every notebook, on Colab only) install the course from the same place with
# ``%pip install -q "<pip_spec()>"``. REF is a git ref: "main" follows this repository's main branch
# (new commits reach Colab users at once; nothing is pinned); a release tag such as "v0.1.0" would
# pin every notebook to that release. tests/test_hygiene.py checks every badge and install line
# against these two constants, so changing REF here and in the notebooks is one search-and-replace.
REPO = "inside-deepseek-r1/inside-deepseek-r1"
REF = "main"
DISTRIBUTION = "inside-deepseek-r1"  # the name in pyproject.toml


def pip_spec(extras: tuple[str, ...] = ()) -> str:
    """The requirement the Colab install cells give pip: the course from GitHub at ``REF``.

    Only the runtime dependencies come with it (no Jupyter server, no kernel: Colab has its own);
    ``extras=("rl",)`` adds an optional group from pyproject.toml.
    """
    name = DISTRIBUTION + (f"[{','.join(extras)}]" if extras else "")
    return f"{name} @ git+https://github.com/{REPO}@{REF}"
