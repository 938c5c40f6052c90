"""The FAQ chain (questions -> answers -> sources, `chain`) and one stored run (`runs`)."""

MAX_QUESTIONS = 50  # here, not in `chain`, so the CLI and the modal read it without the chain
