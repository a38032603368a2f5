"""Developer tools: example recordings and tokenizer (``example``, ``example_tokenizer``) and the
benchmarks (``bench``, ``frames_bench``). Not needed to build or train."""
