"""Training-time loading: frame references -> frames (``frames``), rows -> model inputs
(``transforms``), batches and DataLoaders (``torch``), nanoVLM datasets (``nanovlm``). Nothing here
converts recordings."""
