"""Training-time loading: frame references -> frames (``frames``), rows -> model inputs
(``transforms``), batches and DataLoaders (``torch``). Nothing here converts recordings."""
