"""``python -m hypotez.training [IMAGE]``: the seed's demonstration (``main()``)."""

import sys

from hypotez.training.seed import main

main(sys.argv[1] if len(sys.argv) > 1 else None)
