from bazaar.cli import main

raise SystemExit(main())
