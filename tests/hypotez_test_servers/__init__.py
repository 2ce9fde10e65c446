"""Fixtures that start the real servers the tests talk to (aimock, SeaweedFS), on 127.0.0.1."""
