"""Cluster configs shipped with assay (YAML, selected by name: `cluster="local"`)."""
