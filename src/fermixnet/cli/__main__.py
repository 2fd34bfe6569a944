from fermixnet.cli import main

raise SystemExit(main())
