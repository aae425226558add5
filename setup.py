"""Build and install linf-tf: the C codec extension plus the Python package.

All third-party versions are pinned here and nowhere else (``PINS``).

* ``pip install .``            the codec, the ``linf`` CLI and LiteRT restoration with the shipped
                               models: no TensorFlow (layers ``codec`` and ``runtime``)
* ``pip install ".[train]"``   + TensorFlow, Keras, tensorflow-datasets, absl, TensorBoard,
                               matplotlib: training, export, evaluation (``learn``, ``evaluation``)
* ``pip install ".[serving]"`` + the TF Serving gRPC client API (serving/client.py --grpc)
* ``pip install ".[zarr]"``    + numcodecs / Zarr v3 / Dask
* ``pip install ".[dev]"``     everything above plus the test and lint tools (what ``make test`` uses)
"""

from glob import glob

from setuptools import Extension, find_packages, setup

PINS = {
    # base: codec, I/O, CLI, LiteRT restoration
    "numpy": "2.4.6",
    "scikit-image": "0.26.0",
    "imagecodecs": "2026.3.6",
    "tifffile": "2026.3.3",
    "pydicom": "3.0.2",
    "opencv-python-headless": "5.0.0.93",
    "tqdm": "4.70.1",
    "pillow": "13.0.0",  # pydicom's decoder for JPEG 2000 / JPEG baseline DICOM pixel data
    "ai-edge-litert": "2.3.0",
    "threadpoolctl": "3.8.0",  # one BLAS thread per worker while the integer network runs chunks in parallel
    # [train]: learning, export, evaluation
    "matplotlib": "3.11.2",
    "tensorflow": "2.21.0",
    "keras": "3.15.1",
    "tensorflow-datasets": "4.9.10",
    "importlib_resources": "7.1.0",  # tensorflow-datasets' builders import it but do not declare it
    "absl-py": "2.5.1",
    "tensorboard": "2.21.0",  # viewing the training summaries (TF 2.21 no longer installs it)
    # [serving]
    "tensorflow-serving-api": "2.21.0",  # gRPC client of serving/client.py
    # development
    "pytest": "9.2.0",
    "hypothesis": "6.170.15",
    "ruff": "0.17.6",
    # arrays: the numcodecs / Zarr v3 codec, Dask, and the baselines of benchmarks/array_bench.py
    "numcodecs": "0.16.6",  # newest for Python 3.11 (0.17 needs 3.12)
    "zarr": "3.1.6",  # newest for Python 3.11
    "dask": "2026.8.0",
    "distributed": "2026.8.0",  # examples/zarr_dask.py (LocalCluster)
    "pysz": "1.1.0",  # SZ3
    "zfpy": "1.0.1",  # not 1.0.1.post0: numcodecs 0.16 cannot parse that version and its registry breaks
}

BASE = [  # codec + CLI + LiteRT restoration
    "numpy", "scikit-image", "imagecodecs", "tifffile", "pydicom", "opencv-python-headless",
    "tqdm", "pillow", "ai-edge-litert", "threadpoolctl",
]
TRAIN = [
    "tensorflow", "keras", "tensorflow-datasets", "importlib_resources", "absl-py", "tensorboard",
    "matplotlib",
]
SERVING = ["tensorflow-serving-api"]
ZARR = ["numcodecs", "zarr", "dask", "distributed"]
ARRAY_BENCH = ["pysz", "zfpy"]
DEV = [*TRAIN, *SERVING, "pytest", "hypothesis", "ruff", *ZARR, *ARRAY_BENCH]


def pinned(names: list[str]) -> list[str]:
    return [f"{name}=={PINS[name]}" for name in names]


codec_extension = Extension(
    "linf_tf._linfcodec",
    sources=["linf_tf/_linfcodec.c", *sorted(glob("csrc/src/*.c"))],
    include_dirs=["csrc/include", "csrc/src"],
    extra_compile_args=[
        "-std=c99", "-O3", "-ffp-contract=off", "-pthread", "-Wall", "-Wextra", "-Wno-unused-parameter",
    ],
    extra_link_args=["-pthread"],  # stripes are coded on POSIX threads (csrc/src/codec.c)
)

setup(
    name="linf-tf",
    version="0.1.0",
    description="Near-lossless (L-infinity bounded) image codec with an L-infinity-constrained CNN decoder",
    python_requires=">=3.10",
    packages=find_packages(include=["linf_tf", "linf_tf.*"]),
    package_data={"linf_tf": ["weights/*/*"]},  # one folder per shipped model (rgb/, gray/, ...)
    ext_modules=[codec_extension],
    install_requires=pinned(BASE),
    extras_require={
        "train": pinned(TRAIN),
        "serving": pinned(SERVING),
        "zarr": pinned(ZARR),
        "dev": pinned(DEV),
    },
    entry_points={
        "console_scripts": ["linf=linf_tf.cli:main"],
        "numcodecs.codecs": ["linf=linf_tf.numcodecs_codec:LinfCodec"],
        "zarr.codecs": ["linf_tf.linf=linf_tf.zarr_codec:LinfZarrCodec"],
    },
)
