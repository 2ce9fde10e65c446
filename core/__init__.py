# This folder holds the `hypotez` package; it is not a package itself.
raise ImportError("'core' is a source folder, not a package: use `import hypotez`.")
