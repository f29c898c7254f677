"""The checkout is the package `assay`: each folder below is one of its subpackages (installed through
`package-dir` in pyproject.toml). This file only tells static tools (mypy, editors) that the folders
belong together, so the relative imports between them resolve in a plain checkout."""
