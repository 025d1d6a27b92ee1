"""End-to-end orchestration of the local pipeline (`make run`)."""
