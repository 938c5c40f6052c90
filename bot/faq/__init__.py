"""/faq in Slack: the command, shortcut and modal (`feature`), the `faq_build` job
(`job`, `state`, `files`) and its Block Kit (`modal`, `views`)."""
