from pathlib import Path

from setuptools import find_packages
from setuptools import setup

# Pinned to the versions tested together (see README, "The stack").
INSTALL_REQUIRES = [
    "tensorflow==2.21.*",
    "keras>=3.15.1,<3.16",
    "tf-keras==2.21.*",  # tensorflow-probability imports it on first use of tfp.distributions
    "tensorflow-probability==0.25.0",
    "tensorflow-datasets==4.9.*",
    "importlib_resources",  # an undeclared dependency of tensorflow-datasets 4.9 downloads
    "tensorboard==2.21.*",
    "ai-edge-litert>=2.3,<3",
    "tensorflow-serving-api==2.21.*",  # the TF Serving protos and gRPC stubs for export.serve
    "aiohttp>=3.9,<4",  # the HTTP server under export.serve
    "pyyaml>=6",
    "pillow>=10",
    "matplotlib>=3.8",  # the latent scatter plot
    # The disentanglement metrics' classifiers and mutual information: pinned, because their
    # scores move with scikit-learn's defaults (disentanglement_lib #33).
    "scikit-learn==1.9.*",
    "numpy>=1.26",
]

# The trained presets shipped in the package (vae_zoo/presets/<name>/, see vae_zoo/presets).
PRESET_FILES = ["*/card.yaml", "*/config.yaml", "*/model.json", "*/weights.npz", "*/check_images.npz"]
# The feature nets of the sample-quality metrics (vae_zoo/evaluation/feature_nets/<dataset>/).
FEATURE_NET_FILES = ["*/card.yaml", "*/weights.npz"]
HUB = ["huggingface_hub>=2.4,<3"]  # from_preset("hf://user/name")
# The documentation site (mkdocs.yml; tests/test_docs_site.py builds it strictly). matplotlib draws
# the results' plots (benchmarks/plots.py); it is also a core dependency, for the latent scatter.
DOCS = ["mkdocs==1.6.1", "mkdocs-material==9.8.2", "mkdocstrings==1.0.8",
        "mkdocstrings-python==2.0.11", "matplotlib>=3.8"]

setup(
    name="vae_zoo",
    version="0.1.0",
    description="A model zoo of variational autoencoders for Keras 3 and TensorFlow",
    long_description=Path("README.md").read_text() if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["vae_zoo", "vae_zoo.*"]) + ["vae_zoo.zoo_configs"],
    # The zoo's YAML configs live at the top level of the repo and inside the installed package.
    package_dir={"vae_zoo.zoo_configs": "zoo_configs"},
    package_data={
        "vae_zoo.data": ["mnist_sample.npz", "MNIST_SAMPLE.md"],
        "vae_zoo.zoo_configs": ["*.yaml"],
        "vae_zoo.presets": PRESET_FILES,
        "vae_zoo.evaluation.feature_nets": FEATURE_NET_FILES,
    },
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "test": ["pytest>=8", "pytest-timeout>=2.3", "pytest-xdist>=3.6", "hypothesis>=6.100", *HUB],
        "hub": HUB,
        "docs": DOCS,
        "gpu": ["tensorflow[and-cuda]==2.21.*"],
    },
    entry_points={"console_scripts": [
        "vae-zoo-train=vae_zoo.commands.train:main",
        "vae-zoo-evaluate=vae_zoo.commands.evaluate:main",
        "vae-zoo-export=vae_zoo.commands.export:main",
        "vae-zoo-serve=vae_zoo.commands.serve:main",
        "vae-zoo-sample=vae_zoo.commands.sample:main",
    ]},
)
