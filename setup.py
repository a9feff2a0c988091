"""The compiled record codec (logq/client/_records.c); everything else about the package is in pyproject.toml.

The extension is optional: without a C compiler or Python's headers the install still succeeds and
logq/client/records.py uses its pure-Python codec instead (docs/client.md, "The compiled record codec").
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "logq.client._records",
            sources=["logq/client/_records.c"],
            optional=True,  # a failed build warns, and the install goes on without it
        )
    ]
)
