"""Running the benchmarks on a GPU box that lacks some packages and the ELPV data (see README)."""
