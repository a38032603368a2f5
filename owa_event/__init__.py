"""The event stage and what every stage shares: reading recordings, the recording selection
(topics, intervals, rates), the accounting of every message, the stage protocol and the errors."""
