import sys

from sloscale.cli import main

sys.exit(main())
