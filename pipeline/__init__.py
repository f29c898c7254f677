"""The user's surface: pipeline functions (run_cmd, eval, generate, ...), the CLI, cluster configs, job dispatch."""
