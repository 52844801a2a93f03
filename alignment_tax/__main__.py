from alignment_tax.cli import main

raise SystemExit(main())
