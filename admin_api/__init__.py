"""The admin API: answer curation, feedback, monitoring and retraining for support staff."""
