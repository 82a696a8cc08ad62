from setuptools import find_packages, setup

setup(
    name="pixelrnn-tf",
    version="0.1.0",
    description="Design, train, emulate and deploy in-pixel neural networks for focal-plane sensor-processors",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["pixelrnn_tf*", "sensor*", "training*", "export*", "pixelrnn_cli*"]),
    package_data={"training": ["data/*.json", "configs/*.json"], "sensor": ["presets/*.json"]},
    install_requires=[
        "tensorflow==2.21.0",
        "tf-keras==2.21.0",
        "larq==0.14.0",
        "numpy>=1.26,<2",  # larq 0.14 does not work with numpy 2
        "tensorflow-datasets==4.9.10",
        # tensorflow-datasets 4.9.10 imports importlib_resources when it prepares a data set but
        # declares it only for Python < 3.9 (tensorflow/datasets#11212).
        "importlib_resources==7.1.0",
        # tensorflow-datasets and Ray import pyarrow; 26 needs numpy 2, which larq 0.14 cannot use.
        "pyarrow==25.0.1",
        "tensorboard==2.21.0",  # the TensorBoard callback writes logs through it
        "typer==0.29.2",
        "rich==15.0.0",  # progress bars of the emulator (typer brings it; we import it directly)
        "matplotlib==3.11.2",
        # The exporter checks its int8 decoder on the real TFLite Micro interpreter (only dev
        # builds are published) and on LiteRT, the interpreter that replaces tf.lite.Interpreter.
        "tflite-micro==0.dev20261023182759",
        "ai-edge-litert==2.3.0",
    ],
    extras_require={
        # Sweeps of many training runs (`pixelrnn reproduce ... --executor ray`) spread over a
        # cluster through Ray; the tests start a local Ray instance, so they need it too.
        "cluster": ["ray==2.60.0"],
        "test": ["pytest==9.2.0", "ray==2.60.0"],
    },
    entry_points={"console_scripts": ["pixelrnn=pixelrnn_cli.app:main", "pixelrnn-export=pixelrnn_cli.app:export_main"]},
)
