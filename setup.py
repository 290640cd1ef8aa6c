"""Build of the optional C++ truncated-attention kernel (metadata lives in pyproject.toml).

seqattn/nn/csrc/banded_attention.cpp becomes seqattn/nn/_banded_attention*.so, a plain shared
library that seqattn.nn.native loads with ctypes (no Python C API, no torch headers: it builds in
about 2 s).  ``optional=True``: without a C++ compiler the install still succeeds and seqattn uses
its torch path.  -march=native because the library is built on the machine that runs it (an
editable or source install); -fopenmp so that it shares the libgomp torch has already loaded.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "seqattn.nn._banded_attention",
            sources=["seqattn/nn/csrc/banded_attention.cpp"],
            language="c++",
            # -Wno-uninitialized: GCC 12 warns inside its own avx512fintrin.h (_mm512_undefined_ps); -Wno-psabi:
            # GCC notes the ABI of 64-byte vectors between inlined helpers when AVX-512 is off.
            extra_compile_args=["-O3", "-march=native", "-std=c++17", "-fopenmp", "-Wno-uninitialized", "-Wno-psabi"],
            extra_link_args=["-fopenmp"],
            optional=True,
        )
    ]
)
