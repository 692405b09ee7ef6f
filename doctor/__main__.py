"""`python -m doctor` entry point."""

from doctor.cli import main

raise SystemExit(main())
