"""The dispatching ops behind :mod:`npaccel.linalg`, :mod:`npaccel.fft` and
:mod:`npaccel.einsum`: one choice of backend per call (`_dispatch`), one implementation per
backend (`_numpy` the reference, `_cpu` multithreaded host libraries, `_cuda` CuPy), with
the array-module-generic parts written once (`_xp`). BLAS/LAPACK, pocketfft, cuBLAS,
cuSOLVER and cuFFT do the work; nothing here is a kernel.
"""
