# hypotez's fixtures for plugin authors: plugin_manager (a fresh manager that loads the
# installed plugins through their entry points, this one included) and make_settings
# (settings whose data folder is the test's temporary folder).
pytest_plugins = ["hypotez.testing"]
