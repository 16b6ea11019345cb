"""Test setup for the shoal Python package.

Runs against the installed package (`pip install .`, which also registers the pytest
plugin through its entry point) or against a source tree built in place
(`python setup.py build_ext --inplace` then `PYTHONPATH=python python -m pytest
tests/python`); in the second case the plugin is registered here.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # shoal_workers must be importable by spawned processes too
    sys.path.insert(0, HERE)


def pytest_configure(config):
    pm = config.pluginmanager
    if pm.has_plugin("shoal") or pm.is_blocked("shoal"):
        return
    import shoal.pytest_plugin

    if not pm.is_registered(shoal.pytest_plugin):
        pm.register(shoal.pytest_plugin, "shoal")


def pytest_report_header(config):
    import shoal

    return "shoal %s from %s, backend %s, shoald %s" % (
        shoal.version(), os.path.dirname(shoal.__file__), shoal.backend_name(),
        shoal.find_shoald())
