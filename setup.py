import pathlib
import re

from setuptools import find_packages
from setuptools import setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"',
    (HERE / "keras_seqrnn" / "version.py").read_text(),
    re.M,
).group(1)

setup(
    name="keras-seqrnn",
    version=VERSION,
    description=(
        "Keras 3 recurrent layers for sequence classification, with "
        "builtin-only quantized TFLite export."
    ),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_seqrnn", "keras_seqrnn.*", "export", "export.*"]),
    package_data={"keras_seqrnn.datasets": ["data/*.ts"]},
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15.1,<3.16",
        "numpy>=1.26,<3",
        "tensorflow-model-optimization>=0.8.1,<0.9",
        "ai-edge-litert>=2.3,<2.4",
    ],
    extras_require={
        "sklearn": ["scikit-learn>=1.5"],
        "dev": [
            "scikit-learn>=1.5",
            "pytest>=8",
            "pytest-xdist>=3.5",
            "hypothesis>=6.100",
            "nbclient>=0.10",
            "nbformat>=5.10",
            "ipykernel>=6.29",
            "tensorboard>=2.20",
            "matplotlib>=3.8",
        ],
    },
    entry_points={"console_scripts": ["seqrnn=keras_seqrnn.cli:main"]},
)
