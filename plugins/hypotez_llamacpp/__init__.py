"""hypotez_llamacpp: under construction (registers nothing yet)."""
