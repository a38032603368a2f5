"""Packaging beyond pyproject.toml: ship the top-level ``dataset_cards/`` folder (the dataset card
templates) inside the package, as ``owa_builders/dataset_cards/`` (setuptools ``package_dir``).

A wheel then holds ``owa_builders/dataset_cards/*.md``; an editable install and a source checkout use
the top-level folder itself. ``owa_builders.publish.card.templates_dir`` looks in both places.
Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["owa_builders*", "owa_event*", "owa_binned*", "owa_fsl*"]),
        "owa_builders.dataset_cards",
    ],
    package_dir={"owa_builders.dataset_cards": "dataset_cards"},
)
