"""The Rasa project (config, domain, rules) and the code that builds, trains and runs it."""
