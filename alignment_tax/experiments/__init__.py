"""Declarative experiments (`alignment-tax run SPEC.yaml`) and the demo built on them."""
