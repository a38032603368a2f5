"""The binned stage: events of each episode as fixed-rate steps (bins)."""
