"""Build configuration for the compiled kernel; everything else lives in pyproject.toml.

``episode_sampler._kernel`` (src/episode_sampler/_kernel.c) holds the hot loops: the Feistel
permutation, the position -> frame lookup and a Python-int iterator over int64 arrays. It needs only
a C compiler and the Python headers (no numpy headers). It is marked optional: where it cannot be
built, the install still succeeds and the same results come from the numpy code, more slowly
(``episode_sampler.kernel_info()`` tells which is in use).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "episode_sampler._kernel",
            ["src/episode_sampler/_kernel.c"],
            extra_compile_args=["-O3", "-std=c99", "-pthread"],
            extra_link_args=["-pthread"],
            optional=True,
        )
    ]
)
