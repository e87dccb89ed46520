"""Inside DeepSeek-R1: the library behind the course notebooks.

One module per idea; import the one you need, e.g. ``from course_lib import runtime``.
Importing the package does nothing else (no downloads, no plotting, no seeding).
"""

__version__ = "0.1.0"

# Where the course lives; the notebooks' Colab badges and install cells point here.
REPO = "inside-deepseek-r1/inside-deepseek-r1"
REF = "main"
