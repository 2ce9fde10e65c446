"""hypotez_e5: under construction (registers nothing yet)."""
