"""RWKU: real-world knowledge unlearning of 200 famous people (docs/tasks-muse-wmdp-rwku.md)."""
