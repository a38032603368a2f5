"""Developer tools, run from a checkout and not shipped in the wheel: the benchmarks
(``python -m devtools.bench``, ``bench_frames``, ``bench_ray``) and the fuzzer (``python -m devtools.fuzz``).

The user commands ``owa-builders bench``, ``bench-frames`` and ``bench-ray`` are thin wrappers that
import these modules only when run (see ``owa_builders.cli``)."""
