"""hypotez_openai: under construction (registers nothing yet)."""
