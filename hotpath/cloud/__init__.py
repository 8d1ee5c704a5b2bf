"""The cloud assistant: tenancy, chunking, retrieval-grounded answers (plain logic, no I/O clients)."""
