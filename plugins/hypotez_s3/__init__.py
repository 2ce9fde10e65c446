"""hypotez_s3: under construction (registers nothing yet)."""
