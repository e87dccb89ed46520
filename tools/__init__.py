"""Repository tooling (not part of the course library): run from the repository root."""
