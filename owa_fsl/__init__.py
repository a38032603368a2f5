"""The FSL (fixed sequence length) stage: events as tokens of a vision-language model, packed into
sequences of exactly ``max_sequence_length`` ids with references to their video frames."""
