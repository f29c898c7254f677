"""A tiny 'stage' for tests: writes the argv it received as JSON, to show overrides arrive unchanged."""

import json
import sys

with open(sys.argv[1], "w") as f:
    json.dump(sys.argv[2:], f)
