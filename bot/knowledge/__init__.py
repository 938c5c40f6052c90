"""The knowledge base in Slack: agents see its documents in App Home and remove one."""
