from formscan.cli import main

raise SystemExit(main())
