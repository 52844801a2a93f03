"""alignment-tax: measure what adapting an LLM to a low-resource language cost it elsewhere."""

__version__ = "0.1.0"
