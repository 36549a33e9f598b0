"""The job runner: claim a job row, run its body, report progress, finish the row.

The modules here import the engine only inside functions, so importing them never imports torch.
"""
