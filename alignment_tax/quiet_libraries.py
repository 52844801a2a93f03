"""What the CLI silences in the libraries it drives, each thing by name.

Progress bars and advisory warnings from transformers/datasets drown the one line a user needs
to read; results go to files and stdout. Only *named* third-party warnings are filtered: each
entry of :data:`KNOWN_LIBRARY_WARNINGS` gives the message, the category and the library module
that raises it, so a new warning, and every warning raised from this package's own code
(a ``FutureWarning`` or ``DeprecationWarning`` included), still shows.
"""

from __future__ import annotations

import os
import warnings

# Warnings libraries raise about their own internals, each named, so that a new one still shows.
KNOWN_LIBRARY_WARNINGS = (
    # Trainers ask for pinned memory; on a CPU there is nothing to pin, and torch says so every epoch.
    (r"'pin_memory' argument is set as true but no accelerator is found", UserWarning, r"torch\.utils\.data"),
    # TRL and PEFT call the methods transformers 5 renamed to *activation_checkpointing*; ours use the new names.
    (
        r"`(is_gradient_checkpointing|gradient_checkpointing_enable|gradient_checkpointing_disable)` is deprecated",
        FutureWarning,
        r"transformers\.modeling_utils",
    ),
)


def quiet_libraries() -> None:
    """Quiet transformers' and the hub's progress output and filter :data:`KNOWN_LIBRARY_WARNINGS`."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for message, category, module in KNOWN_LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
