"""Ray jobs submitted through Ray Job Submission (thin shells over hotpath.refresh and friends)."""
