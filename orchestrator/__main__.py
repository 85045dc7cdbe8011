from orchestrator._cli import main

raise SystemExit(main())
