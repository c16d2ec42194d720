"""Adds the top-level ``model_cards/`` folder to the wheel as the package ``hfssl.model_cards``.

Everything else is in ``pyproject.toml``; ``[tool.setuptools.packages.find]`` cannot be combined
with a package whose source folder lies outside its parent's, so the package list is built here.
"""

from setuptools import find_namespace_packages, setup

packages = find_namespace_packages(include=["hfssl*", "eval_suite*"]) + ["hfssl.model_cards"]
setup(packages=packages, package_dir={"hfssl.model_cards": "model_cards"})
