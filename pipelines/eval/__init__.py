"""`supportbot eval`: the labelled set (`data`), its metrics, the single-prompt baseline
and the report comparing it with the pipelines."""
