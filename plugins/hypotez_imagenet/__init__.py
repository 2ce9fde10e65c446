"""hypotez_imagenet: under construction (registers nothing yet)."""
