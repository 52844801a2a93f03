"""``python -m alignment_tax.trainers train ...``: the alignment-tax CLI under another module name,
for launch lines written against it, e.g.::

    accelerate launch --multi_gpu --num_processes 2 -m alignment_tax.trainers train --method sft ...

(``-m alignment_tax train ...`` is the same thing.)
"""

from alignment_tax.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
