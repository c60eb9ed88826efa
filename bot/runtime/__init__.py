"""The plumbing that runs the Rasa project: the guarded input channels, the model swap,
the rendered endpoints and credentials, and the entry points of the Rasa and action servers."""
