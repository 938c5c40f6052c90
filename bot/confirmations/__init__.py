"""Confirm before acting: Confirm / Change / Cancel on the side effects a reply prepared."""
