"""Build of the optional C++ truncated-attention kernel (metadata lives in pyproject.toml).

seqattn/nn/csrc/banded_attention.cpp becomes seqattn/nn/_banded_attention*.so, a plain shared
library that seqattn.nn.native loads with ctypes (no Python C API, no torch headers: it builds in
about 2 s).  ``optional=True``: without a C++ compiler the install still succeeds and seqattn uses
its torch path.  The instruction set is the one torch calls "AVX512" (F, DQ, BW, VL, with AVX2 and
FMA), not -march=native: the library then runs on any CPU where seqattn.nn.native loads it, even
when the source tree moves to another machine (same speed here, measured).  On other CPUs or
architectures the build fails or the library is never loaded, and seqattn uses torch.  -fopenmp
so that it shares the libgomp torch has already loaded.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "seqattn.nn._banded_attention",
            sources=["seqattn/nn/csrc/banded_attention.cpp"],
            language="c++",
            # -Wno-uninitialized: GCC 12 warns inside its own avx512fintrin.h (_mm512_undefined_ps).
            extra_compile_args=["-O3", "-std=c++17", "-fopenmp", "-mavx2", "-mfma", "-mavx512f", "-mavx512dq",
                                "-mavx512bw", "-mavx512vl", "-mtune=native", "-Wno-uninitialized"],
            extra_link_args=["-fopenmp"],
            optional=True,
        )
    ]
)
